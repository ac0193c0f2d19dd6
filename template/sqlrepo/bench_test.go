package sqlrepo_test

// Benchmarks of the SQL template repository, run by hand (CI's test step
// does not run benchmarks):
//
//	DIRECTDL_TEST_POSTGRES=postgres://... go test -run '^$' -bench . -benchtime 2s ./template/sqlrepo/
//
// Without DIRECTDL_TEST_POSTGRES the PostgreSQL sub-benchmarks skip, under
// CI too. Each benchmark has a sub-benchmark per dialect; the store it
// needs is built there, once, before the timed sub-benchmarks below it
// (a sub-benchmark's own function runs several times, b.N = 1 and up,
// and would rebuild it each time).
//
// Stores are filled by bulkLoad, which writes the rows Register would
// write straight into the tables, a few hundred rows per INSERT and all in
// one transaction: Register takes one transaction, so one fsync with
// SQLite's synchronous=FULL or a PostgreSQL server with fsync on, per
// template, and 100,000 of those would take far longer than the
// benchmarks themselves. The time each fill took is logged.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directdl/directdl/internal/sqlstore"
	"github.com/directdl/directdl/internal/sqlstore/sqlstoretest"
	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/sqlrepo"
)

// The store of BenchmarkRegister, BenchmarkListZone and
// BenchmarkDeleteFromZone: benchTemplates templates, each offered in one
// of benchZones zones, the zones taking turns.
const (
	benchTemplates = 10_000
	benchZones     = 10
)

// benchParallelism times GOMAXPROCS is how many goroutines the parallel
// sub-benchmarks run; PostgreSQL's pool holds 16 connections.
const benchParallelism = 8

// layout says which zones offer the i-th template bulkLoad writes.
type layout func(i int) []template.ZoneID

// inTenZones offers the i-th template in one of benchZones zones.
func inTenZones(i int) []template.ZoneID {
	return []template.ZoneID{template.ZoneID(1 + i%benchZones)}
}

// inTwoZones offers the i-th template in two neighbouring zones of
// benchZones; DeleteFromZone benchmarks delete the first.
func inTwoZones(i int) []template.ZoneID {
	return []template.ZoneID{template.ZoneID(1 + i%benchZones), template.ZoneID(1 + (i+1)%benchZones)}
}

// benchStore is a repository and its database, holding base templates
// with IDs up to maxID after setup.
type benchStore struct {
	r     *sqlrepo.Repo
	dsn   string
	maxID template.ID
}

// eachBenchDialect runs f as a sub-benchmark per dialect, with newDSN
// making a fresh database of it. PostgreSQL skips without
// DIRECTDL_TEST_POSTGRES, whether or not under CI.
func eachBenchDialect(b *testing.B, f func(b *testing.B, newDSN func(testing.TB) string)) {
	for _, d := range sqlstoretest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			if d.Name == "postgres" && os.Getenv(sqlstoretest.PostgresEnv) == "" {
				b.Skipf("PostgreSQL skipped: set %s to a server URL (see .ci/run)", sqlstoretest.PostgresEnv)
			}
			f(b, d.DSN)
		})
	}
}

// newBenchStore opens a repository in a fresh database and fills it with n
// templates laid out by zones. The database lives until b ends.
func newBenchStore(b *testing.B, newDSN func(testing.TB) string, n int, zones layout) *benchStore {
	b.Helper()
	dsn := newDSN(b)
	r, err := sqlrepo.Open(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	start := time.Now()
	ids := bulkLoad(b, dsn, n, zones)
	b.Logf("populated %d templates in %v", n, time.Since(start).Round(time.Millisecond))
	return &benchStore{r: r, dsn: dsn, maxID: ids[len(ids)-1]}
}

// benchNew is the i-th template a benchmark registers: two details, as
// bulkLoad writes.
func benchNew(i int) template.NewTemplate {
	return template.NewTemplate{
		Name:        fmt.Sprintf("bench-%07d", i),
		DisplayText: fmt.Sprintf("benchmark template %d", i),
		Hypervisor:  "KVM",
		URL:         fmt.Sprintf("https://images.example.com/bench-%07d.qcow2", i),
		Checksum:    "{SHA-256}" + strings.Repeat("ab", 32),
		Size:        10 << 30,
		Owner:       "admin",
		Details:     map[string]string{"UEFI": "secure", "bench.index": strconv.Itoa(i)},
	}
}

// bulkLoad writes n templates, as Register would have (details as
// benchNew's, zones by layout), in one transaction of multi-row INSERTs,
// and returns their IDs, ascending, above every ID already used. On
// PostgreSQL it then moves the ID sequence past them (the rows give their
// IDs explicitly) and analyzes the tables, as autovacuum would within a
// minute of such a load, so that the planner knows their sizes.
func bulkLoad(tb testing.TB, dsn string, n int, zones layout) []template.ID {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()

	const chunk = 500 // templates per INSERT: 7,500 parameters
	ids := make([]template.ID, 0, n)
	err = sqlstore.InTx(ctx, db, func(tx *sql.Tx) error {
		ids = ids[:0]
		var last int64
		// MAX(id) and not the sequence: an ID the sequence handed out
		// and a rollback left unused does no harm to skip.
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM templates`).Scan(&last); err != nil {
			return err
		}
		created := sqlstore.UnixNano(sqlstore.Now())
		tpls := newInserter(ctx, tx, db, `INSERT INTO templates (id, uuid, name, name_lower, display_text, format, type,
			hypervisor, url, checksum, direct_download, size, physical_size, owner, created, removed) VALUES `, 16)
		refs := newInserter(ctx, tx, db, `INSERT INTO template_zones (template_id, zone_id, created) VALUES `, 3)
		details := newInserter(ctx, tx, db, `INSERT INTO template_details (template_id, key, value) VALUES `, 3)
		for lo := 0; lo < n; lo += chunk {
			for i := lo; i < min(lo+chunk, n); i++ {
				id := template.ID(last + int64(i) + 1)
				ids = append(ids, id)
				nt := benchNew(int(id))
				tpls.add(id, template.NewUUID(), nt.Name, strings.ToLower(nt.Name), nt.DisplayText, string(template.QCOW2),
					string(template.User), nt.Hypervisor, nt.URL, nt.Checksum, false, nt.Size, int64(0), nt.Owner, created, nil)
				for _, z := range zones(i) {
					refs.add(id, z, created)
				}
				for _, k := range []string{"UEFI", "bench.index"} {
					details.add(id, k, nt.Details[k])
				}
			}
			// Templates first: the other two tables' foreign keys point
			// at them.
			for _, in := range []*inserter{tpls, refs, details} {
				if err := in.flush(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("bulk load of %d templates: %v", n, err)
	}
	if db.Dialect() == sqlstore.Postgres {
		for _, stmt := range []string{
			`SELECT setval(pg_get_serial_sequence('templates', 'id'), (SELECT MAX(id) FROM templates))`,
			`ANALYZE templates, template_zones, template_details`,
		} {
			if _, err := db.SQL().ExecContext(ctx, stmt); err != nil {
				tb.Fatalf("after bulk load: %s: %v", stmt, err)
			}
		}
	}
	return ids
}

// inserter gathers rows for one multi-row INSERT.
type inserter struct {
	ctx    context.Context
	tx     *sql.Tx
	db     *sqlstore.DB
	prefix string
	cols   int
	args   []any
}

func newInserter(ctx context.Context, tx *sql.Tx, db *sqlstore.DB, prefix string, cols int) *inserter {
	return &inserter{ctx: ctx, tx: tx, db: db, prefix: prefix, cols: cols}
}

func (in *inserter) add(values ...any) { in.args = append(in.args, values...) }

func (in *inserter) flush() error {
	rows := len(in.args) / in.cols
	if rows == 0 {
		return nil
	}
	row := "(" + strings.Repeat("?, ", in.cols-1) + "?)"
	q := in.prefix + strings.Repeat(row+", ", rows-1) + row
	_, err := in.tx.ExecContext(in.ctx, in.db.Rebind(q), in.args...)
	in.args = in.args[:0]
	return err
}

// trim hard-deletes every template above s.maxID with its rows, so that
// each round of a sub-benchmark (b.N = 1, then more) starts from the same
// store rather than from one grown by the rounds before.
func (s *benchStore) trim(b *testing.B) {
	b.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, s.dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	err = sqlstore.InTx(ctx, db, func(tx *sql.Tx) error {
		for _, table := range []string{"usages", "store_refs", "template_zones", "template_details"} {
			if _, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM `+table+` WHERE template_id > ?`), s.maxID); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM templates WHERE id > ?`), s.maxID)
		return err
	})
	if err != nil {
		b.Fatalf("trim store to %d templates: %v", s.maxID, err)
	}
}

// reportOps reports the operations per second of the timed part.
func reportOps(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

// BenchmarkRegister registers templates with two details in one zone
// into a store holding 10,000 templates in 10 zones: one after another
// (serial), and from benchParallelism*GOMAXPROCS goroutines at once
// (parallel). Each round starts from the 10,000 templates; within a round
// the store grows by what it registers.
func BenchmarkRegister(b *testing.B) {
	eachBenchDialect(b, func(b *testing.B, newDSN func(testing.TB) string) {
		s := newBenchStore(b, newDSN, benchTemplates, inTenZones)
		ctx := context.Background()
		b.Run("serial", func(b *testing.B) {
			s.trim(b)
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.r.Register(ctx, benchNew(benchTemplates+i), inTenZones(i)...); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportOps(b)
		})
		b.Run("parallel", func(b *testing.B) {
			s.trim(b)
			var next atomic.Int64
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1))
					if _, err := s.r.Register(ctx, benchNew(benchTemplates+i), inTenZones(i)...); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			reportOps(b)
		})
	})
}

// BenchmarkListZone lists the first page (100 templates, with their
// details and zones) of one zone of a store holding 10,000 templates in
// 10 zones, the zones taking turns.
func BenchmarkListZone(b *testing.B) {
	eachBenchDialect(b, func(b *testing.B, newDSN func(testing.TB) string) {
		s := newBenchStore(b, newDSN, benchTemplates, inTenZones)
		ctx := context.Background()
		b.Run("first-page", func(b *testing.B) {
			for i := range b.N {
				p, err := s.r.List(ctx, template.ListOptions{Zone: template.ZoneID(1 + i%benchZones), Limit: 100})
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Templates) != 100 || p.Next == 0 {
					b.Fatalf("first page of zone %d: %d templates, next %d; want 100 and more", 1+i%benchZones, len(p.Templates), p.Next)
				}
			}
		})
	})
}

// BenchmarkListZoneScaling lists zone 1, which offers 1,000 templates, in
// a store holding those alone (total=1k) and in one holding 99,000 more,
// offered by 99 other zones (total=100k): its first page of 100, and all
// ten pages of it. In total=100k zone 1's templates are spread evenly
// among the others' (every hundredth ID), so that a plan scanning
// templates by ID would have to pass the others' to fill a page, and each
// of its rows sits on a page of its own. total=100k-contiguous is the
// control: the same store with zone 1's templates the first 1,000 IDs,
// packed as in total=1k, so that what it costs above total=1k is the size
// of the tables and indexes, and what total=100k costs above it is the
// scattering of zone 1's rows.
func BenchmarkListZoneScaling(b *testing.B) {
	const zoneSize = 1000
	eachBenchDialect(b, func(b *testing.B, newDSN func(testing.TB) string) {
		for _, c := range []struct {
			name  string
			total int
			zones layout
		}{
			{"total=1k", 1_000, func(int) []template.ZoneID { return []template.ZoneID{1} }},
			{"total=100k", 100_000, func(i int) []template.ZoneID { return []template.ZoneID{template.ZoneID(1 + i%100)} }},
			{"total=100k-contiguous", 100_000, func(i int) []template.ZoneID { return []template.ZoneID{template.ZoneID(1 + i/zoneSize)} }},
		} {
			b.Run(c.name, func(b *testing.B) {
				s := newBenchStore(b, newDSN, c.total, c.zones)
				ctx := context.Background()
				b.Run("first-page", func(b *testing.B) {
					for range b.N {
						p, err := s.r.List(ctx, template.ListOptions{Zone: 1, Limit: 100})
						if err != nil {
							b.Fatal(err)
						}
						if len(p.Templates) != 100 {
							b.Fatalf("first page: %d templates, want 100", len(p.Templates))
						}
					}
				})
				b.Run("all-pages", func(b *testing.B) {
					for range b.N {
						o, seen := template.ListOptions{Zone: 1, Limit: 100}, 0
						for {
							p, err := s.r.List(ctx, o)
							if err != nil {
								b.Fatal(err)
							}
							seen += len(p.Templates)
							if p.Next == 0 {
								break
							}
							o.After = p.Next
						}
						if seen != zoneSize {
							b.Fatalf("paging through zone 1: %d templates, want %d", seen, zoneSize)
						}
					}
				})
			})
		}
	})
}

// BenchmarkDeleteFromZone deletes, in a store holding 10,000 templates in
// 10 zones, one zone ref of a fresh template per operation: of templates
// two zones offer, one after another (serial) and from
// benchParallelism*GOMAXPROCS goroutines at once (parallel); and of
// templates one zone offers (serial-last-zone), so that each delete
// soft-deletes its template and removes its details. Each round trims the
// store back to its 10,000 and bulk-loads its b.N fresh templates before
// the timer starts.
func BenchmarkDeleteFromZone(b *testing.B) {
	eachBenchDialect(b, func(b *testing.B, newDSN func(testing.TB) string) {
		s := newBenchStore(b, newDSN, benchTemplates, inTenZones)
		ctx := context.Background()
		for _, c := range []struct {
			name     string
			zones    layout
			parallel bool
		}{
			{"serial", inTwoZones, false},
			{"parallel", inTwoZones, true},
			{"serial-last-zone", inTenZones, false},
		} {
			b.Run(c.name, func(b *testing.B) {
				s.trim(b)
				ids := bulkLoad(b, s.dsn, b.N, c.zones)
				del := func(i int) error {
					res, err := s.r.DeleteFromZone(ctx, ids[i], c.zones(i)[0], template.DeleteOptions{})
					if err == nil && res.Removed != (len(c.zones(i)) == 1) {
						err = fmt.Errorf("delete zone %d of template %d: removed %v", c.zones(i)[0], ids[i], res.Removed)
					}
					return err
				}
				if c.parallel {
					var next atomic.Int64
					b.SetParallelism(benchParallelism)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := del(int(next.Add(1) - 1)); err != nil {
								b.Error(err)
								return
							}
						}
					})
				} else {
					b.ResetTimer()
					for i := range b.N {
						if err := del(i); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				reportOps(b)
			})
		}
	})
}
