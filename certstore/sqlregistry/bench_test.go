package sqlregistry_test

// Benchmarks of the SQL registry database, run by hand (CI's test step does
// not run benchmarks):
//
//	DIRECTDL_TEST_POSTGRES=postgres://... go test -run '^$' -bench . -benchtime 2s ./certstore/sqlregistry/
//
// Without DIRECTDL_TEST_POSTGRES the PostgreSQL sub-benchmarks skip, under
// CI too. The store a benchmark needs is built in its dialect's
// sub-benchmark, once, before the timed sub-benchmarks below it.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/certstore/registrytest"
	"github.com/directdl/directdl/certstore/sqlregistry"
	"github.com/directdl/directdl/internal/sqlstore"
	"github.com/directdl/directdl/internal/sqlstore/sqlstoretest"
)

// eachBenchDialect runs f as a sub-benchmark per dialect, with a fresh
// database of it. PostgreSQL skips without DIRECTDL_TEST_POSTGRES, whether
// or not under CI.
func eachBenchDialect(b *testing.B, f func(b *testing.B, dsn string)) {
	for _, d := range sqlstoretest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			if d.Name == "postgres" && os.Getenv(sqlstoretest.PostgresEnv) == "" {
				b.Skipf("PostgreSQL skipped: set %s to a server URL (see .ci/run)", sqlstoretest.PostgresEnv)
			}
			f(b, d.DSN(b))
		})
	}
}

// reportOps reports the operations per second of the timed part.
func reportOps(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

// BenchmarkAddCertificate adds certificates with a chain of two (leaf and
// CA, as an upload of a mirror's certificate and its intermediate), each
// under an alias of its own in one of 10 zones: one after another (serial),
// and from 8*GOMAXPROCS goroutines at once (parallel). Each add is one
// transaction, so one fsync on SQLite (synchronous=FULL); .ci/run's
// PostgreSQL runs with fsync off.
func BenchmarkAddCertificate(b *testing.B) {
	chain := registrytest.Chain(2)
	eachBenchDialect(b, func(b *testing.B, dsn string) {
		db, err := sqlregistry.Open(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		ctx := context.Background()
		var next atomic.Int64
		add := func() error {
			i := next.Add(1)
			_, err := db.AddCertificate(ctx, certstore.Certificate{
				Alias: fmt.Sprintf("bench-%d", i), Zone: certstore.ZoneID(1 + i%10), Hypervisor: certstore.KVM,
				Chain: chain, Created: sqlstore.Now(),
			})
			return err
		}
		b.Run("serial", func(b *testing.B) {
			for range b.N {
				if err := add(); err != nil {
					b.Fatal(err)
				}
			}
			reportOps(b)
		})
		b.Run("parallel", func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := add(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportOps(b)
		})
	})
}

// The store BenchmarkHostStates reads: every one of benchCerts certificates
// on each of benchHosts hosts.
const (
	benchCerts = 10
	benchHosts = 1000
)

// BenchmarkHostStates reads back the states of 10 certificates on 1,000
// hosts: all 10,000 (all), one certificate's 1,000 (one-certificate, as
// List with hosts does), and one host's 10 (one-host, as Sync does per
// host).
func BenchmarkHostStates(b *testing.B) {
	eachBenchDialect(b, func(b *testing.B, dsn string) {
		ctx := context.Background()
		db, err := sqlregistry.Open(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		var certs []certstore.ID
		for i := range benchCerts {
			c, err := db.AddCertificate(ctx, certstore.Certificate{
				Alias: fmt.Sprintf("bench-%d", i), Zone: 1, Hypervisor: certstore.KVM, Chain: registrytest.Chain(2), Created: sqlstore.Now(),
			})
			if err != nil {
				b.Fatal(err)
			}
			certs = append(certs, c.ID)
		}
		start := time.Now()
		bulkStates(b, dsn, certs)
		b.Logf("populated %d host states in %v", benchCerts*benchHosts, time.Since(start).Round(time.Millisecond))

		for _, c := range []struct {
			name string
			cert certstore.ID
			host certstore.HostID
			want int
		}{
			{"all", 0, 0, benchCerts * benchHosts},
			{"one-certificate", certs[benchCerts/2], 0, benchHosts},
			{"one-host", 0, benchHosts / 2, benchCerts},
		} {
			b.Run(c.name, func(b *testing.B) {
				for range b.N {
					states, err := db.HostStates(ctx, c.cert, c.host)
					if err != nil {
						b.Fatal(err)
					}
					if len(states) != c.want {
						b.Fatalf("HostStates(%d, %d): %d states, want %d", c.cert, c.host, len(states), c.want)
					}
				}
				reportOps(b)
			})
		}
	})
}

// bulkStates writes the state of every certificate on hosts 1 to
// benchHosts, as PutHostState would, in one transaction of multi-row
// INSERTs: 10,000 PutHostState calls would be 10,000 fsyncs on SQLite. On
// PostgreSQL it then analyzes the table, as autovacuum would soon after
// such a load.
func bulkStates(b *testing.B, dsn string, certs []certstore.ID) {
	b.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const chunk = 500 // rows per INSERT: 3,000 parameters
	updated := sqlstore.UnixNano(sqlstore.Now())
	err = sqlstore.InTx(ctx, db, func(tx *sql.Tx) error {
		var args []any
		flush := func() error {
			rows := len(args) / 6
			if rows == 0 {
				return nil
			}
			row := "(?, ?, ?, ?, ?, ?)"
			_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO host_states (cert_id, host_id, revoked, status, error, updated) VALUES `+
				strings.Repeat(row+", ", rows-1)+row), args...)
			args = args[:0]
			return err
		}
		for _, c := range certs {
			for h := 1; h <= benchHosts; h++ {
				args = append(args, c, h, false, string(certstore.Synced), "", updated)
				if len(args) == 6*chunk {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		return flush()
	})
	if err != nil {
		b.Fatalf("bulk load of host states: %v", err)
	}
	if db.Dialect() == sqlstore.Postgres {
		if _, err := db.SQL().ExecContext(ctx, `ANALYZE host_states`); err != nil {
			b.Fatal(err)
		}
	}
}
