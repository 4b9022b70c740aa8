//go:build arpc

package benchgrpc

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestZZScale(t *testing.T) {
	const n = 100
	servers := make([]*ArpcServer, n)
	clients := make([]*ArpcClient, n)
	for i := range n {
		s, err := NewArpcServer(t.Context(), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = s
		defer s.Close()
		c, err := NewArpcClient(t.Context(), s.Addr(), fmt.Sprint("c", i))
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
		defer c.Close()
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for k := range 5000 {
				st := time.Now()
				if err := c.Cycle(t.Context()); err != nil {
					t.Errorf("client %d cycle %d after %v: %v; server err: %v; server: %s; mirror: %s", i, k, time.Since(st), err,
						servers[i].Mach.Err(), servers[i].Mach.StringAll(), c.cli.Worker.StringAll())
					return
				}
			}
		})
	}
	wg.Wait()
}
