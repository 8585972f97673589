package child

import (
	"net"
	"os/exec"
	"strconv"
	"testing"
)

func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for i := range 50 {
		bus := i%2 == 0
		p, err := FreePort(bus)
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] || (bus && seen[p+10000]) {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if bus {
			if p > maxBusPort {
				t.Fatalf("bus port of %d out of range", p)
			}
			seen[p+10000] = true
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", p, err)
		}
		l.Close()
	}
}

func TestStart(t *testing.T) {
	cmd := exec.Command("true")
	if err := Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}
