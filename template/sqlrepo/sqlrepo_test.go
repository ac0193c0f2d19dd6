package sqlrepo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directdl/directdl/internal/sqlstore"
	"github.com/directdl/directdl/internal/sqlstore/sqlstoretest"
	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/sqlrepo"
)

// eachDialect runs f as a parallel subtest on a fresh database of each
// dialect.
func eachDialect(t *testing.T, f func(t *testing.T, dsn string)) {
	for _, d := range sqlstoretest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			f(t, d.DSN(t))
		})
	}
}

func closeLater(t testing.TB, r *sqlrepo.Repo) *sqlrepo.Repo {
	t.Cleanup(func() { r.Close() })
	return r
}

// rowCounts returns how many rows each child table holds for template id,
// read straight from the database.
func rowCounts(t testing.TB, dsn string, id template.ID) map[string]int {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	counts := map[string]int{}
	for _, table := range []string{"template_zones", "template_details", "store_refs", "usages"} {
		var n int
		q := db.Rebind(`SELECT COUNT(*) FROM ` + table + ` WHERE template_id = ?`)
		if err := db.SQL().QueryRow(q, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		counts[table] = n
	}
	return counts
}

// seed001 registers the template of apache/cloudstack#10600 in zones 1
// and 2, with UEFI=secure and a store ref and a volume in each zone.
func seed001(t testing.TB, r *sqlrepo.Repo, zones ...template.ZoneID) template.Template {
	t.Helper()
	ctx := context.Background()
	tpl, err := r.Register(ctx, template.NewTemplate{
		Name: "seed-001", URL: "https://images.example.com/seed.qcow2",
		Details: map[string]string{"UEFI": "secure"},
	}, zones...)
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range zones {
		if _, err := r.CreateStoreRef(ctx, template.StoreRef{Template: tpl.ID, Zone: z, Store: template.StoreID(z), Kind: template.ImageStore}); err != nil {
			t.Fatal(err)
		}
		if err := r.AddUsage(ctx, template.Usage{Template: tpl.ID, Zone: z, Volume: fmt.Sprintf("vol-%d", z)}); err != nil {
			t.Fatal(err)
		}
	}
	return tpl
}

// TestSeed001Rows checks the rows themselves: deleting zone 2 removes
// exactly zone 2's rows and no detail; deleting zone 1 leaves nothing but
// the soft-deleted template row.
func TestSeed001Rows(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := closeLater(t, openRepo(t, dsn))
		tpl := seed001(t, r, 1, 2)
		want := map[string]int{"template_zones": 2, "template_details": 1, "store_refs": 2, "usages": 2}
		if got := rowCounts(t, dsn, tpl.ID); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("rows after registering: %v, want %v", got, want)
		}
		if _, err := r.DeleteFromZone(ctx, tpl.ID, 2, template.DeleteOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		want = map[string]int{"template_zones": 1, "template_details": 1, "store_refs": 1, "usages": 1}
		if got := rowCounts(t, dsn, tpl.ID); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("rows after deleting zone 2: %v, want %v", got, want)
		}
		res, err := r.DeleteFromZone(ctx, tpl.ID, 1, template.DeleteOptions{Force: true})
		if err != nil || !res.Removed {
			t.Fatalf("DeleteFromZone(zone 1): %+v, %v; want Removed", res, err)
		}
		want = map[string]int{"template_zones": 0, "template_details": 0, "store_refs": 0, "usages": 0}
		if got := rowCounts(t, dsn, tpl.ID); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("rows after deleting zone 1: %v, want %v", got, want)
		}
		got, err := r.Get(ctx, tpl.ID, template.IncludeRemoved())
		if err != nil || got.Removed.IsZero() {
			t.Errorf("Get(IncludeRemoved): removed %v, %v; want a removal time", got.Removed, err)
		}
	})
}

// Concurrent zone deletes through several repositories on one database,
// as several processes or hosts would run them: each has a pool of its
// own, and on SQLite only the file lock serializes them.
func TestConcurrentDeletesSeveralHandles(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		const zones, handles = 64, 4
		repos := make([]*sqlrepo.Repo, handles)
		for i := range repos {
			repos[i] = closeLater(t, openRepo(t, dsn))
		}
		var all []template.ZoneID
		for z := range zones {
			all = append(all, template.ZoneID(z+1))
		}
		tpl := seed001(t, repos[0], all...)
		var removed atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range zones {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := repos[i%handles].DeleteFromZone(ctx, tpl.ID, template.ZoneID(i+1), template.DeleteOptions{Force: true})
				if err != nil {
					t.Errorf("DeleteFromZone(zone %d): %v", i+1, err)
				}
				if res.Removed {
					removed.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := removed.Load(); n != 1 {
			t.Errorf("%d concurrent deletes through %d handles: %d reported Removed, want 1", zones, handles, n)
		}
		if got := rowCounts(t, dsn, tpl.ID); fmt.Sprint(got) != fmt.Sprint(map[string]int{"store_refs": 0, "template_details": 0, "template_zones": 0, "usages": 0}) {
			t.Errorf("rows left: %v", got)
		}
	})
}

// helperEnv makes the test binary a child process that deletes zones of a
// template in the SQLite file it names: "PATH ID ZONE,ZONE,...".
const helperEnv = "SQLREPO_TEST_DELETE"

func TestMain(m *testing.M) {
	if job := os.Getenv(helperEnv); job != "" {
		if err := deleteZones(job); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// deleteZones runs the job of a child process and prints how many of its
// deletes reported Removed.
func deleteZones(job string) error {
	f := strings.Fields(job)
	path := f[0]
	id, _ := strconv.ParseInt(f[1], 10, 64)
	ctx := context.Background()
	r, err := sqlrepo.Open(ctx, path)
	if err != nil {
		return err
	}
	defer r.Close()
	var wg sync.WaitGroup
	var removed atomic.Int32
	errs := make(chan error, 64)
	for _, z := range strings.Split(f[2], ",") {
		zone, _ := strconv.ParseInt(z, 10, 64)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.DeleteFromZone(ctx, template.ID(id), template.ZoneID(zone), template.DeleteOptions{})
			if err != nil {
				errs <- fmt.Errorf("zone %d: %w", zone, err)
			}
			if res.Removed {
				removed.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	fmt.Println(removed.Load())
	return nil
}

// Four processes delete 16 zones each of one template in one SQLite file
// at once, as concurrent ddctl invocations would: exactly one removes it.
func TestSQLiteDeletesSeveralProcesses(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	path := sqlstoretest.SQLiteDSN(t)
	r := openRepo(t, path)
	var all []template.ZoneID
	for z := range 64 {
		all = append(all, template.ZoneID(z+1))
	}
	tpl, err := r.Register(context.Background(), template.NewTemplate{Name: "shared", Details: map[string]string{"UEFI": "secure"}}, all...)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	const procs = 4
	outs := make([]strings.Builder, procs)
	cmds := make([]*exec.Cmd, procs)
	for p := range procs {
		var zs []string
		for z := p*16 + 1; z <= (p+1)*16; z++ {
			zs = append(zs, strconv.Itoa(z))
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s", helperEnv, path, tpl.ID, strings.Join(zs, ",")))
		cmd.Stdout, cmd.Stderr = &outs[p], os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[p] = cmd
	}
	removed := 0
	for p, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v", p, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(outs[p].String()))
		if err != nil {
			t.Fatalf("process %d printed %q", p, outs[p].String())
		}
		removed += n
	}
	if removed != 1 {
		t.Errorf("%d processes deleting every zone: %d deletes reported Removed, want 1", procs, removed)
	}
	r = closeLater(t, openRepo(t, path))
	got, err := r.Get(context.Background(), tpl.ID, template.IncludeRemoved())
	if err != nil || got.Removed.IsZero() || len(got.Details) != 0 {
		t.Errorf("after the deletes: removed %v, details %v, %v; want removed with no details", got.Removed, got.Details, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		openRepo(t, dsn).Close()
		sqlstoretest.RecordNewerSchema(t, dsn, "template", sqlrepo.SchemaVersion+1)
		r, err := sqlrepo.Open(ctx, dsn)
		if err == nil {
			r.Close()
			t.Fatal("Open of a database with a newer schema succeeded")
		}
		if !errors.Is(err, sqlrepo.ErrSchemaTooNew) {
			t.Errorf("Open: %v, want ErrSchemaTooNew", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	notDB := sqlstoretest.SQLiteDSN(t)
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err := sqlrepo.Open(ctx, notDB); err == nil {
		r.Close()
		t.Errorf("Open of a file that is not a database succeeded")
	} else if !strings.Contains(err.Error(), notDB) {
		t.Errorf("Open error does not name the file: %v", err)
	}
}

// List by zone reads only that zone's entries of the zone index (SQLite's
// plan; PostgreSQL picks plans by table statistics).
func TestListByZoneUsesIndex(t *testing.T) {
	t.Parallel()
	dsn := sqlstoretest.SQLiteDSN(t)
	openRepo(t, dsn).Close()
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.SQL().Query(`EXPLAIN QUERY PLAN SELECT t.id FROM template_zones z JOIN templates t ON t.id = z.template_id
		WHERE z.zone_id = ? AND z.template_id > ? AND t.removed IS NULL ORDER BY z.template_id LIMIT ?`, 1, 0, 101)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	got := strings.Join(plan, "; ")
	if !strings.Contains(got, "template_zones_by_zone (zone_id=? AND template_id>?)") || strings.Contains(got, "TEMP B-TREE") {
		t.Errorf("plan of List by zone: %s; want a search of template_zones_by_zone on zone_id and template_id, and no sort", got)
	}
}

// Stored times come back equal, in UTC.
func TestTimesRoundTrip(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := closeLater(t, openRepo(t, dsn))
		tpl := seed001(t, r, 1)
		got, err := r.Get(ctx, tpl.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Created.Equal(tpl.Created) || got.Created.Location() != time.UTC {
			t.Errorf("Created: got %v, want %v in UTC", got.Created, tpl.Created)
		}
		if got.Created != tpl.Created {
			t.Errorf("Created: got %#v, want the identical value %#v", got.Created, tpl.Created)
		}
	})
}

// The queries List and the store-ref calls build are valid in both
// dialects with every filter at once.
func TestListAllFilters(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := closeLater(t, openRepo(t, dsn))
		for i, name := range []string{"Ubuntu 100%_done", "ubuntu-100x", "DEBIAN"} {
			_, err := r.Register(ctx, template.NewTemplate{Name: name, DirectDownload: i == 0, Format: template.RAW}, 3)
			if err != nil {
				t.Fatal(err)
			}
		}
		yes := true
		page, err := r.List(ctx, template.ListOptions{Zone: 3, Name: "100%_", Format: "raw", Type: "user", DirectDownload: &yes, IncludeRemoved: true, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Templates) != 1 || page.Templates[0].Name != "Ubuntu 100%_done" || page.Next != 0 {
			t.Errorf("List with every filter: got %+v", page)
		}
	})
}
