package check

import (
	"bytes"
	"testing"
	"time"

	"github.com/fencekit/fencekit/chaos/history"
)

// Whatever a history holds, Check reports; it never panics.
func FuzzCheck(f *testing.F) {
	seeds := []string{
		`{"p":1,"s":"a","op":"acquire","tok":5,"st":"ok","call":1,"ret":2}`,
		`{"p":1,"s":"a","op":"save","tok":5,"in":"x","v":-3,"st":"ok","call":1,"ret":2}
{"p":1,"s":"a","op":"load","tok":5,"out":"x","v":1000000000000,"st":"ok","call":3,"ret":4}
{"s":"a","op":"final","st":"ok","call":9,"ret":9,"data":{"found":true,"state":{"v":1000000000000,"tok":5},"events":[{"v":1,"tok":5,"type":"created"},{"v":1000000000000,"tok":5,"type":"saved"}]}}`,
		`{"p":2,"s":"a","op":"cas","tok":5,"in":"nogt","v":7,"st":"fail","ek":"conflict","call":1,"ret":2}
{"p":2,"s":"a","op":"checkpoint","tok":5,"out":"cp","st":"ok","call":3,"ret":4}
{"s":"a","op":"final","st":"ok","call":9,"ret":9,"data":{"found":true,"events":[{"v":3,"tok":1,"type":"checkpoint","f":{"id":"cp","seq":"x"}}],"cps":[{"id":"cp","seq":-1}],"stream":[{"seq":"nodash","kind":"c","data":"z"}]}}`,
		`{"p":3,"s":"b","op":"append","tok":1,"in":"c","out":"1-99999999999999999999","st":"ok","call":5,"ret":1}
{"p":3,"s":"b","op":"load","st":"unknown","call":5,"ret":1}
{"op":"nemesis","in":"failover","st":"ok","call":4,"ret":2}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, _, err := history.Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, mode := range []Mode{Durable, Fast} {
			r, err := Check(ops, Config{Mode: mode, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_ = r.String()
			_ = r.OK()
		}
	})
}
