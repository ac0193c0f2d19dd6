package certstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
)

// BenchmarkSync syncs 5 certificates to 1,000 simulated hosts whose trust
// store answers every call after 20 ms, as an agent across a network would:
// "initial" installs all five everywhere (a read, five imports and a read
// back per host), "steady" finds every host up to date (one read per host).
// Run with -benchtime=1x; one at a time takes minutes.
func BenchmarkSync(b *testing.B) {
	const hosts, certs = 1000, 5
	latency := 20 * time.Millisecond
	ctx := context.Background()
	for _, mode := range []string{"initial", "steady"} {
		for _, conc := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/concurrency=%d", mode, conc), func(b *testing.B) {
				db := certstore.NewMemoryDB()
				var pems [][]byte
				for i := range certs {
					pems = append(pems, regPEM(regCA(b, fmt.Sprintf("CA %d", i))))
				}
				for b.Loop() {
					b.StopTimer()
					inv := &regHosts{}
					for h := range hosts {
						inv.add(certstore.HostID(h+1), 1, true)
					}
					reg, err := certstore.NewRegistry(db, inv, certstore.WithConcurrency(conc))
					if err != nil {
						b.Fatal(err)
					}
					if cs, _ := db.Certificates(ctx, certstore.Filter{}); len(cs) == 0 {
						records, _ := certstore.NewRegistry(db, nil)
						for i, p := range pems {
							if _, err := records.Upload(ctx, certstore.Upload{Alias: fmt.Sprintf("ca%d", i), PEM: p, Zone: 1}); err != nil {
								b.Fatal(err)
							}
						}
					}
					if mode == "steady" {
						if rep, err := reg.Sync(ctx); err != nil || rep.Err() != nil {
							b.Fatal(err, rep.Err())
						}
					}
					hs, _ := inv.Hosts(ctx)
					for _, h := range hs {
						h.Store.(*regStore).set(func(s *regStore) { s.latency = latency })
					}
					b.StartTimer()
					rep, err := reg.Sync(ctx)
					if err != nil || rep.Err() != nil {
						b.Fatal(err, rep.Err())
					}
					b.StopTimer()
					added := 0
					for _, h := range rep.Hosts {
						added += len(h.Added)
					}
					if want := map[string]int{"initial": hosts * certs, "steady": 0}[mode]; added != want {
						b.Fatalf("%d entries added, want %d", added, want)
					}
					b.StartTimer()
				}
			})
		}
	}
}
