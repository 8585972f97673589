package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redact"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/tlsconf"
)

// Exit codes; see the package documentation.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitConnect  = 3
	exitNotFound = 4
)

// defaultURL is used when neither --url nor REDIS_URL is set.
const defaultURL = "redis://127.0.0.1:6379"

// codeError carries an exit code with the error that caused it.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &codeError{exitUsage, fmt.Errorf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &codeError{exitNotFound, fmt.Errorf(format, args...)}
}

// errUsageShown is returned after flag parsing failed: flag has already
// printed the reason and the usage.
var errUsageShown = errors.New("usage")

// exitCodeOf maps an error to the process exit code.
func exitCodeOf(err error) int {
	var ce *codeError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsageShown), errors.Is(err, keys.ErrInvalidID):
		return exitUsage
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, statestore.ErrNotFound):
		return exitNotFound
	case errors.Is(err, statestore.ErrInvalidCursor), errors.Is(err, statestore.ErrInvalidArgument):
		return exitUsage
	}
	return exitFailed
}

// command is one subcommand.
type command struct {
	name    string
	args    string // positional arguments, for the usage line
	summary string
	flags   func(fs *flag.FlagSet, a *app) // registers the command's own flags
	nargs   int                            // exact number of positional arguments
	check   func(a *app) error             // validates flags before connecting
	run     func(ctx context.Context, a *app, args []string) error
	noConn  bool // the command connects by itself
}

// commands in the order of the usage text; force.go adds force-release.
var commands = []*command{
	locksCmd,
	lockCmd,
	sessionCmd,
	checkpointsCmd,
	checkpointCmd,
	doctorCmd,
}

// app is the state of one run: flags, output and the client.
type app struct {
	stdout, stderr io.Writer
	env            func(string) string
	log            *slog.Logger

	url     string
	prefix  string
	timeout time.Duration
	json    bool
	tls     tlsconf.Files // --tls-* flags, else $REDIS_TLS_*

	// Flags of single commands.
	watch     bool
	interval  time.Duration
	limit     int
	cursor    string
	reason    string
	by        string
	fenceTTL  time.Duration
	strict    bool
	eventLog  bool   // doctor --event-log
	subAgents bool   // usage --subagents
	scopes    string // usage --scopes

	opt      rueidis.ClientOption
	redacted string // url with its credentials replaced by "xxxxx" (redact.URL)
	client   rueidis.Client
}

// run is the whole program: it parses args (without the program name),
// runs one subcommand and returns the exit code. env replaces os.Getenv.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, env: env}
	err := a.main(ctx, args)
	if a.client != nil {
		a.client.Close()
	}
	code := exitCodeOf(err)
	if err != nil && !errors.Is(err, errUsageShown) && !errors.Is(err, errQuiet) {
		fmt.Fprintf(a.stderr, "fencekit: %s\n", a.redact(err.Error()))
		if code == exitUsage {
			fmt.Fprintln(a.stderr, "Run 'fencekit help' for usage.")
		}
	}
	return code
}

// errQuiet ends a run whose command already reported its outcome.
var errQuiet = errors.New("already reported")

func (a *app) main(ctx context.Context, args []string) error {
	global := flag.NewFlagSet("fencekit", flag.ContinueOnError)
	global.SetOutput(a.stderr)
	a.commonFlags(global)
	global.Usage = func() { a.usage(a.stderr) }
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsageShown
	}
	rest := global.Args()
	if len(rest) == 0 {
		a.usage(a.stderr)
		return errUsageShown
	}
	name := rest[0]
	if name == "help" || name == "-h" || name == "--help" {
		if len(rest) > 1 {
			if c := lookup(rest[1]); c != nil {
				fs := a.flagSet(c)
				fs.SetOutput(a.stdout)
				fs.Usage()
				return nil
			}
		}
		a.usage(a.stdout)
		return nil
	}
	c := lookup(name)
	if c == nil {
		return usageErr("unknown command %q", name)
	}
	fs := a.flagSet(c)
	pos, err := parseInterleaved(fs, rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsageShown
	}
	if len(pos) != c.nargs {
		return usageErr("%s: want %d argument(s) (%s), got %d", c.name, c.nargs, c.args, len(pos))
	}
	if err := a.setup(); err != nil {
		return err
	}
	if c.check != nil {
		if err := c.check(a); err != nil {
			return err
		}
	}
	if !c.noConn {
		if err := a.connect(ctx); err != nil {
			return err
		}
	}
	return c.run(ctx, a, pos)
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// commonFlags registers the connection and output flags, accepted before
// and after the subcommand.
func (a *app) commonFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "url", a.url, "Redis URL (rueidis.ParseURL: redis://, rediss://, user:password@, ?addr=, ?master_set=); default $REDIS_URL, else "+defaultURL)
	fs.StringVar(&a.prefix, "prefix", orDefault(a.prefix, lock.DefaultPrefix), "key prefix of the lockers and stores")
	fs.DurationVar(&a.timeout, "timeout", orDefaultDur(a.timeout, 5*time.Second), "timeout of connecting and of each request")
	fs.BoolVar(&a.json, "json", a.json, "print JSON (schemas in cmd/fencekit/schema) instead of text")
	fs.StringVar(&a.tls.CAFile, "tls-ca", a.tls.CAFile, "PEM file of the CAs to trust for TLS (default $REDIS_TLS_CA_FILE, else the system's)")
	fs.StringVar(&a.tls.CertFile, "tls-cert", a.tls.CertFile, "PEM client certificate for mutual TLS (default $REDIS_TLS_CERT_FILE)")
	fs.StringVar(&a.tls.KeyFile, "tls-key", a.tls.KeyFile, "PEM private key of --tls-cert (default $REDIS_TLS_KEY_FILE)")
	fs.BoolVar(&a.tls.InsecureSkipVerify, "tls-insecure-skip-verify", a.tls.InsecureSkipVerify, "do not verify the server's certificate (INSECURE; doctor warns; also $REDIS_TLS_INSECURE_SKIP_VERIFY=1)")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func orDefaultDur(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

func (a *app) flagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("fencekit "+c.name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	a.commonFlags(fs)
	if c.flags != nil {
		c.flags(fs, a)
	}
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: fencekit %s [flags] %s\n\n%s\n\nFlags:\n", c.name, c.args, c.summary)
		fs.PrintDefaults()
		fmt.Fprint(out, exitCodesHelp)
	}
	return fs
}

// parseInterleaved parses flags that may come before, between and after
// positional arguments ("lock NAME --watch"), and returns the positional
// arguments. "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

const exitCodesHelp = `
Exit codes:
  0  success (doctor: no failing check; warnings too unless --strict)
  1  the command failed, or doctor found a failing check (with --strict: or a warning)
  2  usage error (unknown command or flag, missing argument, bad name, URL or cursor)
  3  cannot connect to Redis
  4  not found (lock, session or checkpoint)
`

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, `fencekit inspects and operates the locks and sessions fencekit keeps in Redis.

Usage: fencekit [flags] <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-20s %s\n", c.name+" "+c.args, c.summary)
	}
	fmt.Fprint(w, `
Flags (before or after the command):
  --url URL        Redis URL (rueidis.ParseURL: redis://, rediss://, user:password@,
                   ?addr=host:port for more cluster nodes, ?master_set=NAME for Sentinel);
                   default $REDIS_URL, else `+defaultURL+`
  --prefix PREFIX  key prefix of the lockers and stores (default "fencekit")
  --timeout D      timeout of connecting and of each request (default 5s)
  --json           print JSON (schemas in cmd/fencekit/schema) instead of text
  --tls-ca FILE    PEM CA file to trust for TLS (default $REDIS_TLS_CA_FILE)
  --tls-cert FILE, --tls-key FILE
                   PEM client certificate and key for mutual TLS
                   (default $REDIS_TLS_CERT_FILE, $REDIS_TLS_KEY_FILE)
  --tls-insecure-skip-verify
                   do not verify the server's certificate (INSECURE, doctor
                   warns); a URL's ?skip_verify is refused without it

Any --tls-* file turns TLS on, also for a redis:// URL.

Passwords never appear in output: URLs are shown with the password as "xxxxx"
(a URL that does not parse: everything between "//" and its last "@").
Run 'fencekit help <command>' for a command's flags.
`)
	fmt.Fprint(w, exitCodesHelp)
}

// setup resolves the URL and the logger; it does not connect.
func (a *app) setup() error {
	if a.url == "" {
		a.url = a.env("REDIS_URL")
	}
	if a.url == "" {
		a.url = defaultURL
	}
	a.redacted = redact.URL(a.url)
	a.log = slog.New(slog.NewTextHandler(redactingWriter{a}, nil))
	if err := keys.ValidatePrefix(a.prefix); err != nil {
		return usageErr("--prefix: %v", err)
	}
	if a.timeout <= 0 {
		return usageErr("--timeout must be positive")
	}
	opt, err := rueidis.ParseURL(a.url)
	if err != nil {
		// The parser's error quotes the URL and the characters it
		// rejected, which may be the password's.
		return usageErr("--url %s: %s", a.redacted, redact.ParseError(a.url, err))
	}
	env := tlsconf.FilesFromEnv(a.env)
	a.tls.CAFile = orDefault(a.tls.CAFile, env.CAFile)
	a.tls.CertFile = orDefault(a.tls.CertFile, env.CertFile)
	a.tls.KeyFile = orDefault(a.tls.KeyFile, env.KeyFile)
	a.tls.InsecureSkipVerify = a.tls.InsecureSkipVerify || env.InsecureSkipVerify
	if err := a.tls.Apply(&opt); err != nil {
		return &codeError{exitUsage, err}
	}
	// The CLI needs no client-side caching, and servers without CLIENT
	// TRACKING (miniredis, some managed services, ACL users without
	// +client|tracking) would refuse the connection otherwise.
	opt.DisableCache = true
	if opt.Dialer.Timeout == 0 {
		opt.Dialer.Timeout = a.timeout
	}
	if opt.ConnWriteTimeout == 0 {
		opt.ConnWriteTimeout = a.timeout
	}
	a.opt = opt
	return nil
}

// connect creates the client: exit code 3 when the server cannot be reached
// or refuses the credentials.
func (a *app) connect(ctx context.Context) error {
	c, err := newClient(ctx, a.opt, a.timeout)
	if err != nil {
		// A TLS failure comes back as a *tlsconf.Error that says why.
		err = tlsconf.Diagnose(ctx, a.opt, err)
		return &codeError{exitConnect, fmt.Errorf("cannot connect to %s: %w", a.redacted, err)}
	}
	if c.Mode() == rueidis.ClientModeCluster && !isCluster(ctx, c, a.timeout) {
		// rueidis builds a cluster client for any server that answers
		// CLUSTER SLOTS, miniredis included; the lock scripts would then
		// use sharded pub/sub, which such servers lack.
		c.Close()
		opt := a.opt
		opt.ForceSingleClient = true
		if c, err = newClient(ctx, opt, a.timeout); err != nil {
			return &codeError{exitConnect, fmt.Errorf("cannot connect to %s: %w", a.redacted, err)}
		}
		a.opt = opt
	}
	a.client = c
	return nil
}

// isCluster reports whether the server says it runs in cluster mode (INFO
// server: redis_mode:cluster on Redis, server_mode:cluster on Valkey 8 and
// later). When INFO is denied by the ACL it trusts rueidis' detection.
func isCluster(ctx context.Context, c rueidis.Client, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := c.Do(ctx, c.B().Info().Section("server").Build()).ToString()
	if err != nil {
		return strings.Contains(err.Error(), "NOPERM")
	}
	return strings.Contains(s, "redis_mode:cluster") || strings.Contains(s, "server_mode:cluster")
}

// newClient creates a client and checks the connection with PING.
func newClient(ctx context.Context, opt rueidis.ClientOption, timeout time.Duration) (rueidis.Client, error) {
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// reqCtx returns the context of one request.
func (a *app) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.timeout)
}

// redact hides the credentials of the URL in s (internal/redact.Text): the
// URL, its password, and quoted pieces of them, also when the URL does not
// parse.
func (a *app) redact(s string) string {
	if a.opt.Password != "" {
		s = strings.ReplaceAll(s, a.opt.Password, redact.Mask)
	}
	return redact.Text(s, a.url)
}

// redactingWriter writes to stderr with the password replaced; the logger
// writes through it.
type redactingWriter struct{ a *app }

func (w redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.a.stderr, w.a.redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// defaultBy is "$USER@hostname" for force-release's --by.
func defaultBy(env func(string) string) string {
	user := env("USER")
	if user == "" {
		user = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return user + "@" + host
}

// newLocker returns a Locker for reading lock state with the app's prefix.
func (a *app) newLocker() (*lock.Locker, error) {
	return lock.New(a.client, lock.Options{Prefix: a.prefix, Owner: "fencekit-cli"})
}

func (a *app) newStore() (*statestore.Store, error) {
	return statestore.New(a.client, statestore.Options{Prefix: a.prefix})
}

func (a *app) newCheckpoints() (*checkpoint.Store, error) {
	st, err := a.newStore()
	if err != nil {
		return nil, err
	}
	return checkpoint.New(st), nil
}
