package exchange

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// BenchmarkExchange measures one request's share of an exchange: Begin (once
// per exchange), Request, Respond, Wait. Each op is one request; the
// exchange sizes show the per-exchange cost spread over its requests.
func BenchmarkExchange(b *testing.B) {
	for _, size := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("requests=%d", size), func(b *testing.B) {
			c := newCtrl(b, Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ids := make([]string, size)
			payload := struct{ n int }{42}
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += size {
				x := c.Begin(ctx)
				for i := range ids {
					id, err := x.Request(i)
					if err != nil {
						b.Fatal(err)
					}
					ids[i] = id
				}
				for _, id := range ids {
					if err := c.Respond(id, &payload); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := x.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// Responses from another goroutine, as from a queue consumer: adds the
	// channel hand-off and the waiter's wake-up to each exchange.
	b.Run("requests=4/responder", func(b *testing.B) {
		c := newCtrl(b, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		queue := make(chan string, 64)
		var responder sync.WaitGroup
		responder.Go(func() {
			for id := range queue {
				if err := c.Respond(id, nil); err != nil {
					b.Error(err)
				}
			}
		})
		defer func() {
			close(queue)
			responder.Wait()
		}()
		b.ReportAllocs()
		b.ResetTimer()
		for done := 0; done < b.N; done += 4 {
			x := c.Begin(ctx)
			for i := range 4 {
				id, err := x.Request(i)
				if err != nil {
					b.Fatal(err)
				}
				queue <- id
			}
			if _, err := x.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Many goroutines, each running its own exchanges of 4 requests against
	// one controller: the contention of a busy gateway.
	b.Run("parallel", func(b *testing.B) {
		c := newCtrl(b, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var ids [4]string
			for more := true; more; {
				x := c.Begin(ctx)
				n := 0
				for ; n < len(ids) && pb.Next(); n++ {
					id, err := x.Request(n)
					if err != nil {
						b.Error(err)
						return
					}
					ids[n] = id
				}
				more = n == len(ids)
				for _, id := range ids[:n] {
					if err := c.Respond(id, nil); err != nil {
						b.Error(err)
						return
					}
				}
				if _, err := x.Wait(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
