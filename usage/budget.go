package usage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Amount is an amount of tokens and money, for budgets.
type Amount struct {
	Tokens int64
	Cost   Cost
}

func (a Amount) check(what string) error {
	if err := amount(what+" tokens", a.Tokens); err != nil {
		return err
	}
	return amount(what+" cost", int64(a.Cost))
}

// Limit is what SetBudget sets.
type Limit struct {
	// Tokens and Cost cap what the budget may spend; 0: no cap on that
	// unit (but not both 0).
	Tokens int64
	Cost   Cost
	// TTL is how long the budget lives after its last write; 0:
	// Options.BudgetTTL; negative: forever. For a budget per period (a
	// day), put the period in the scope name ("tenant-a/2026-12-04").
	TTL time.Duration
}

// BudgetState is a budget as read by Budget and SessionBudget.
type BudgetState struct {
	// Name is "session:<id>" or "scope:<scope>".
	Name string
	// Limit, Spent (committed) and Held (by live reservations).
	Limit, Spent, Held Amount
	// Holds counts the live reservations.
	Holds int
	// TTL is the budget's TTL (0: none).
	TTL time.Duration
}

// budget is one budget's keys and name.
type budget struct {
	name string
	k    keys.Budget
}

func (s *Store) scopeBudget(scope string) (budget, error) {
	if err := keys.ValidateID(scope); err != nil {
		return budget{}, fmt.Errorf("usage: scope: %w", err)
	}
	return budget{name: "scope:" + scope, k: keys.ForBudget(s.opts.Prefix, scope)}, nil
}

func (s *Store) sessionBudget(id string) (budget, error) {
	k, err := s.keys(id)
	if err != nil {
		return budget{}, err
	}
	return budget{name: "session:" + id, k: k.Budget}, nil
}

// SetBudget sets the limits of the budget of scope (a tenant, a user, a
// day...), creating it; what it has spent and holds is kept. Reserve
// checks it when given the scope. Errors: ErrInvalidID for a bad scope,
// ErrInvalidArgument for bad limits, and transport errors. Safe to retry.
func (s *Store) SetBudget(ctx context.Context, scope string, l Limit) error {
	b, err := s.scopeBudget(scope)
	if err != nil {
		return err
	}
	return s.setBudget(ctx, b, l)
}

// SetSessionBudget sets the limits of session id's own budget, which every
// Reserve for the session checks. Errors as SetBudget.
func (s *Store) SetSessionBudget(ctx context.Context, id string, l Limit) error {
	b, err := s.sessionBudget(id)
	if err != nil {
		return err
	}
	return s.setBudget(ctx, b, l)
}

func (s *Store) setBudget(ctx context.Context, b budget, l Limit) error {
	if err := (Amount{l.Tokens, l.Cost}).check("limit"); err != nil {
		return err
	}
	if l.Tokens == 0 && l.Cost == 0 {
		return fmt.Errorf("usage: %w: a budget needs a token or a cost limit", ErrInvalidArgument)
	}
	ttl := l.TTL
	if ttl == 0 {
		ttl = s.opts.BudgetTTL
	}
	if ttl > 0 && ttl < time.Millisecond {
		return fmt.Errorf("usage: %w: budget TTL %v is shorter than 1ms", ErrInvalidArgument, ttl)
	}
	err := lua.BudgetSet.Exec(ctx, s.client, b.k.All(), []string{strconv.FormatInt(l.Tokens, 10),
		strconv.FormatInt(int64(l.Cost), 10), ttlArg(ttl)}).Error()
	return budgetError("set budget", b.name, err)
}

// Budget reads the budget of scope. It returns ErrNotFound without one.
func (s *Store) Budget(ctx context.Context, scope string) (BudgetState, error) {
	b, err := s.scopeBudget(scope)
	if err != nil {
		return BudgetState{}, err
	}
	return s.readBudget(ctx, b)
}

// SessionBudget reads the budget of session id. It returns ErrNotFound
// without one.
func (s *Store) SessionBudget(ctx context.Context, id string) (BudgetState, error) {
	b, err := s.sessionBudget(id)
	if err != nil {
		return BudgetState{}, err
	}
	return s.readBudget(ctx, b)
}

func (s *Store) readBudget(ctx context.Context, b budget) (BudgetState, error) {
	st := BudgetState{Name: b.name}
	arr, err := lua.BudgetGet.Exec(ctx, s.client, b.k.All(), nil).ToArray()
	if err != nil {
		return st, budgetError("budget", b.name, err)
	}
	if len(arr) == 0 {
		return st, fmt.Errorf("usage: budget %s: %w", b.name, ErrNotFound)
	}
	if len(arr) != 8 {
		return st, fmt.Errorf("%w: budget_get.lua returned %d elements", ErrProtocol, len(arr))
	}
	var v [8]int64
	for i := range arr {
		if i == 6 {
			v[i], err = arr[i].AsInt64()
		} else {
			var str string
			if str, err = arr[i].ToString(); err == nil {
				v[i], err = strconv.ParseInt(str, 10, 64)
			}
		}
		if err != nil {
			return st, fmt.Errorf("%w: budget_get.lua: element %d: %v", ErrProtocol, i, err)
		}
	}
	st.Limit = Amount{v[0], Cost(v[1])}
	st.Spent = Amount{v[2], Cost(v[3])}
	st.Held = Amount{v[4], Cost(v[5])}
	st.Holds = int(v[6])
	st.TTL = time.Duration(v[7]) * time.Millisecond
	return st, nil
}

// budgetError translates a budget script error.
func budgetError(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if code, detail, ok := scripterr.Parse(err); ok && code == "OVER_BUDGET" {
		f := strings.Fields(detail)
		if len(f) == 6 {
			e := &OverBudgetError{Budget: f[0], Unit: f[1]}
			var errs [4]error
			e.Limit, errs[0] = strconv.ParseInt(f[2], 10, 64)
			e.Spent, errs[1] = strconv.ParseInt(f[3], 10, 64)
			e.Held, errs[2] = strconv.ParseInt(f[4], 10, 64)
			e.Requested, errs[3] = strconv.ParseInt(f[5], 10, 64)
			if errors.Join(errs[:]...) == nil {
				return e
			}
		}
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return fenced.Error("usage", op, name, err)
}

// Reservation is an amount held on every budget that applies to a call
// until it is committed or released, or its hold expires (HoldTTL after
// Reserve).
type Reservation struct {
	s       *Store
	id      string
	amount  Amount
	expires time.Time
	held    []budget // the budgets that hold the amount
}

// ID returns the reservation's id (random, unique).
func (r *Reservation) ID() string { return r.id }

// Amount returns the amount reserved.
func (r *Reservation) Amount() Amount { return r.amount }

// Expires returns when the earliest of the holds expires (by the server's
// clock, as seen by this process).
func (r *Reservation) Expires() time.Time { return r.expires }

// Budgets returns the names of the budgets holding the amount (those of
// the ones Reserve checked that exist).
func (r *Reservation) Budgets() []string {
	out := make([]string, len(r.held))
	for i, b := range r.held {
		out[i] = b.name
	}
	return out
}

// Reserve holds amt on the budget of session id (if it has one) and on
// the budgets of scopes (those that exist), before the call that will
// spend it. Each hold is taken by one script that checks the amount fits
// beside what the budget has spent and what its live holds hold, so
// however many executors reserve at once, what they commit never exceeds
// a budget. When one budget refuses, Reserve releases the holds it took
// and returns an [*OverBudgetError] (matching ErrOverBudget) naming the
// budget, its limit and what is spent and held.
//
// Budgets live in different hash slots (a scope's has its own), so the
// holds are taken one after the other, scopes first (sorted), then the
// session: between two steps a hold may refuse another executor that would
// have fitted after the release; never the other way round. A holder that
// dies leaves holds that expire after HoldTTL; the same goes for holds a
// failed Reserve could not release.
//
// Errors: ErrInvalidID, ErrInvalidArgument (negative or huge amounts),
// ErrOverBudget, and transport errors (fencing.ErrNoReply: Reserve is safe
// to retry, but a new call holds anew: let the first one's holds expire or
// release them).
func (s *Store) Reserve(ctx context.Context, id string, amt Amount, scopes ...string) (*Reservation, error) {
	if err := amt.check("reserved"); err != nil {
		return nil, err
	}
	sb, err := s.sessionBudget(id)
	if err != nil {
		return nil, err
	}
	scopes = slices.Clone(scopes)
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	all := make([]budget, 0, len(scopes)+1)
	for _, sc := range scopes {
		b, err := s.scopeBudget(sc)
		if err != nil {
			return nil, err
		}
		all = append(all, b)
	}
	all = append(all, sb)
	var buf [16]byte
	_, _ = rand.Read(buf[:])
	r := &Reservation{s: s, id: "r" + hex.EncodeToString(buf[:]), amount: amt}
	hold := ttlArg(s.opts.HoldTTL)
	for _, b := range all {
		arr, err := lua.BudgetReserve.Exec(ctx, s.client, b.k.All(), []string{r.id, strconv.FormatInt(amt.Tokens, 10),
			strconv.FormatInt(int64(amt.Cost), 10), hold, s.keepArg(), b.name}).ToArray()
		if err == nil {
			var st int64
			if st, err = fenced.Int(arr, 0, "budget_reserve.lua"); err == nil && st == 1 {
				var exp int64
				if exp, err = fenced.Int(arr, 1, "budget_reserve.lua"); err == nil {
					r.held = append(r.held, b)
					if t := time.UnixMilli(exp); r.expires.IsZero() || t.Before(r.expires) {
						r.expires = t
					}
				}
			}
		} else {
			err = budgetError("reserve", b.name, err)
		}
		if err != nil {
			_ = r.settle(context.WithoutCancel(ctx), "R", Amount{})
			return nil, err
		}
	}
	return r, nil
}

// keepArg is how long settle markers are kept: long enough for any retry.
func (s *Store) keepArg() string {
	return ttlArg(max(2*s.opts.HoldTTL, 10*time.Minute))
}

// Commit charges actual (at most the amount reserved, else
// ErrAboveReservation and nothing is settled) to every budget holding the
// reservation and ends the holds. A hold that expired before Commit is
// charged only if actual still fits: otherwise that budget returns an
// [*OverBudgetError] (the others are settled). Commit is safe to retry
// and a second Commit or a Release after it changes nothing. Errors:
// ErrInvalidArgument, ErrAboveReservation, ErrOverBudget and transport
// errors.
func (r *Reservation) Commit(ctx context.Context, actual Amount) error {
	if err := actual.check("committed"); err != nil {
		return err
	}
	if actual.Tokens > r.amount.Tokens || actual.Cost > r.amount.Cost {
		return fmt.Errorf("%w: %d tokens and cost %v, reserved %d and %v", ErrAboveReservation,
			actual.Tokens, actual.Cost, r.amount.Tokens, r.amount.Cost)
	}
	return r.settle(ctx, "C", actual)
}

// Release ends the holds without charging anything. It is nil-safe and
// idempotent; after Commit it changes nothing. Errors: transport errors
// (the holds then expire by themselves).
func (r *Reservation) Release(ctx context.Context) error {
	if r == nil {
		return nil
	}
	return r.settle(ctx, "R", Amount{})
}

func (r *Reservation) settle(ctx context.Context, op string, a Amount) error {
	var errs []error
	for _, b := range r.held {
		err := lua.BudgetSettle.Exec(ctx, r.s.client, b.k.All(), []string{r.id, op, strconv.FormatInt(a.Tokens, 10),
			strconv.FormatInt(int64(a.Cost), 10), r.s.keepArg(), b.name}).Error()
		if err != nil {
			errs = append(errs, budgetError("settle", b.name, err))
		}
	}
	return errors.Join(errs...)
}
