package check

import (
	"sync"

	"github.com/anishathalye/porcupine"

	"github.com/fencekit/fencekit/chaos/history"
)

// artifact is a session whose porcupine check was not Ok, kept for
// WriteArtifacts.
type artifact struct {
	checker string // "c2" or "c4"
	session string
	proj    projection
	ops     []porcupine.Operation
	hist    []history.Op // the session's ops behind ops, as recorded
	result  porcupine.CheckResult
}

// checkModels runs porcupine per session: the fenced register (C2) and the
// CAS register (C4).
func checkModels(in *input, r *Report) {
	type job struct {
		s    *sess
		proj projection
	}
	type done struct {
		job
		ops []porcupine.Operation
		idx []int
		res porcupine.CheckResult
	}
	jobs := make(chan job)
	results := make(chan done)
	var wg sync.WaitGroup
	for w := 0; w < in.cfg.Parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			models := map[projection]porcupine.Model{fenced: newModel(fenced), casReg: newModel(casReg)}
			for j := range jobs {
				ops, idx := modelOps(j.s, in.cfg.Mode)
				res := porcupine.Ok
				if len(ops) > 0 {
					res = porcupine.CheckOperationsTimeout(models[j.proj], ops, in.cfg.Timeout)
				}
				results <- done{j, ops, idx, res}
			}
		}()
	}
	go func() {
		for _, id := range in.order {
			s := in.sessions[id]
			jobs <- job{s, fenced}
			jobs <- job{s, casReg}
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	r.C2.Linearizable, r.C4.Linearizable = porcupine.Ok, porcupine.Ok
	for d := range results {
		res, name := r.C2, "c2"
		if d.proj == casReg {
			res, name = r.C4, "c4"
		}
		res.Examined += len(d.ops)
		if d.res == porcupine.Ok {
			continue
		}
		if res.NonOK == nil {
			res.NonOK = map[string]porcupine.CheckResult{}
		}
		res.NonOK[d.s.id] = d.res
		res.Counts["porcupine_"+string(d.res)]++
		if d.res == porcupine.Illegal || res.Linearizable == porcupine.Ok {
			res.Linearizable = d.res
		}
		r.artifacts = append(r.artifacts, artifact{checker: name, session: d.s.id, proj: d.proj, ops: d.ops, hist: d.s.pick(d.idx), result: d.res})
	}
}
