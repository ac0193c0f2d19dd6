package sqlregistry_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/certstore/registrytest"
	"github.com/directdl/directdl/certstore/sqlregistry"
	"github.com/directdl/directdl/internal/sqlstore"
	"github.com/directdl/directdl/internal/sqlstore/sqlstoretest"
)

func open(t testing.TB, dsn string) *sqlregistry.DB {
	t.Helper()
	db, err := sqlregistry.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// factory runs the conformance suite on databases made by newDSN, one per
// subtest; Reopen closes the handle and opens the same DSN again.
func factory(newDSN func(testing.TB) string) registrytest.Factory {
	var (
		mu   sync.Mutex
		dsns = map[certstore.Database]string{}
	)
	remember := func(db *sqlregistry.DB, dsn string) certstore.Database {
		mu.Lock()
		defer mu.Unlock()
		dsns[db] = dsn
		return db
	}
	return registrytest.Factory{
		New: func(t *testing.T) certstore.Database {
			dsn := newDSN(t)
			return remember(open(t, dsn), dsn)
		},
		Reopen: func(t *testing.T, db certstore.Database) certstore.Database {
			t.Helper()
			mu.Lock()
			dsn := dsns[db]
			delete(dsns, db)
			mu.Unlock()
			if err := db.(*sqlregistry.DB).Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return remember(open(t, dsn), dsn)
		},
	}
}

func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	registrytest.Run(t, factory(sqlstoretest.SQLiteDSN))
}

func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	sqlstoretest.RequirePostgres(t)
	registrytest.Run(t, factory(sqlstoretest.PostgresDSN))
}

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

func kvmCert(alias string, n int) certstore.Certificate {
	return certstore.Certificate{Alias: alias, Zone: 1, Hypervisor: certstore.KVM, Chain: registrytest.Chain(n), Created: sqlstore.Now()}
}

// Two handles on one database, as two processes or hosts have, each see
// the other's writes at once, and the unique index refuses between them
// what a check in one handle's transaction cannot see.
func TestTwoHandles(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		a, b := open(t, dsn), open(t, dsn)
		web, err := a.AddCertificate(ctx, kvmCert("web", 2))
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Certificates(ctx, certstore.Filter{Alias: "web"})
		if err != nil || len(got) != 1 || got[0].ID != web.ID {
			t.Fatalf("second handle, Certificates(web): got %v, %v; want certificate %d", got, err, web.ID)
		}
		if _, err := b.AddCertificate(ctx, kvmCert("web-2", 1)); !errors.Is(err, certstore.ErrDuplicateAlias) {
			t.Errorf("second handle, AddCertificate(web-2): got %v, want ErrDuplicateAlias", err)
		}
		if err := b.PutHostState(ctx, certstore.HostState{Cert: web.ID, Host: 1, Status: certstore.Synced, Updated: sqlstore.Now()}); err != nil {
			t.Fatal(err)
		}
		states, err := a.HostStates(ctx, web.ID, 0)
		if err != nil || len(states) != 1 || states[0].Status != certstore.Synced {
			t.Errorf("first handle, HostStates: got %+v, %v; want the state the second wrote", states, err)
		}
		if err := b.RevokeCertificate(ctx, web.ID, sqlstore.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := a.AddCertificate(ctx, kvmCert("web-2", 1)); err != nil {
			t.Errorf("first handle, AddCertificate(web-2) after the second revoked web: %v", err)
		}

		// Both handles race for one alias: exactly one wins.
		const each = 8
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		for i := range 2 * each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := a
				if i%2 == 1 {
					h = b
				}
				_, err := h.AddCertificate(ctx, kvmCert("api", 1))
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case !errors.Is(err, certstore.ErrDuplicateAlias):
					t.Errorf("AddCertificate(api): %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d uploads of one alias through two handles: %d succeeded, want 1", 2*each, wins)
		}
	})
}

// helperEnv makes the test binary a child process that adds certificates
// aliased "web" to the SQLite file it names, and prints how many it added.
const helperEnv = "SQLREGISTRY_TEST_ADD"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		n, err := addWeb(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(n)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// addWeb opens the registry, which the first process to get there
// creates, and adds "web" from 4 goroutines at once.
func addWeb(path string) (int, error) {
	ctx := context.Background()
	db, err := sqlregistry.Open(ctx, path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		added int
		errs  []error
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.AddCertificate(ctx, kvmCert("web", 2))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				added++
			} else if !errors.Is(err, certstore.ErrDuplicateAlias) {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return added, errors.Join(errs...)
}

// Four processes create one SQLite file and add the same alias to it at
// once, as concurrent ddctl invocations would: exactly one certificate is
// added, and every process sees it.
func TestSQLiteSeveralProcesses(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := sqlstoretest.SQLiteDSN(t)
	const procs = 4
	outs := make([]strings.Builder, procs)
	cmds := make([]*exec.Cmd, procs)
	for p := range procs {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		cmd.Stdout, cmd.Stderr = &outs[p], os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[p] = cmd
	}
	added := 0
	for p, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v", p, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(outs[p].String()))
		if err != nil {
			t.Fatalf("process %d printed %q", p, outs[p].String())
		}
		added += n
	}
	if added != 1 {
		t.Errorf("%d processes adding web 4 times each: %d added, want 1", procs, added)
	}
	cs, err := open(t, path).Certificates(context.Background(), certstore.Filter{IncludeRevoked: true})
	if err != nil || len(cs) != 1 {
		t.Errorf("Certificates after the processes: got %d, %v; want 1", len(cs), err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		if err := open(t, dsn).Close(); err != nil {
			t.Fatal(err)
		}
		sqlstoretest.RecordNewerSchema(t, dsn, "certstore", sqlregistry.SchemaVersion+1)
		r, err := sqlregistry.Open(ctx, dsn)
		if err == nil {
			r.Close()
			t.Fatal("Open of a database with a newer schema succeeded")
		}
		if !errors.Is(err, sqlregistry.ErrSchemaTooNew) {
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
	if db, err := sqlregistry.Open(ctx, notDB); err == nil {
		db.Close()
		t.Errorf("Open of a file that is not a database succeeded")
	} else if !strings.Contains(err.Error(), notDB) {
		t.Errorf("Open error does not name the file: %v", err)
	}

	// Port 1 of loopback: nothing listens there, so the connection is
	// refused at once.
	const secret = "s3cret-Pa55"
	dsn := "postgres://registry:" + secret + "@127.0.0.1:1/certs?sslmode=disable&connect_timeout=5"
	db, err := sqlregistry.Open(ctx, dsn)
	if err == nil {
		db.Close()
		t.Fatal("Open of a PostgreSQL URL where no server listens succeeded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("Open error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "registry:xxxxx@127.0.0.1:1") {
		t.Errorf("Open error does not name the server with the password redacted: %v", err)
	}
}

// Chains that could not be read back, and times the database cannot hold,
// are refused before anything is stored.
func TestAddRefusesWhatCannotBeStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t, sqlstoretest.SQLiteDSN(t))
	good := registrytest.Chain(1)[0]
	for _, tc := range []struct {
		name  string
		edit  func(c *certstore.Certificate)
		want  error
		words string
	}{
		{"nil-certificate", func(c *certstore.Certificate) { c.Chain = []*x509.Certificate{good, nil} }, certstore.ErrInvalidCertificate, "certificate 2 of the chain"},
		{"no-der", func(c *certstore.Certificate) { c.Chain = []*x509.Certificate{{}} }, certstore.ErrInvalidCertificate, "certificate 1 of the chain"},
		{"year-1500", func(c *certstore.Certificate) { c.Created = time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC) }, nil, "out of the range"},
		{"year-2300", func(c *certstore.Certificate) { c.Revoked = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }, nil, "out of the range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := kvmCert("bad-"+tc.name, 1)
			tc.edit(&c)
			_, err := db.AddCertificate(ctx, c)
			if err == nil {
				t.Fatal("AddCertificate succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.words) || !strings.Contains(err.Error(), c.Alias) {
				t.Errorf("got %q, want it to say %q and name %q", err, tc.words, c.Alias)
			}
		})
	}
	cs, err := db.Certificates(ctx, certstore.Filter{IncludeRevoked: true})
	if err != nil || len(cs) != 0 {
		t.Errorf("Certificates after refused adds: %d, %v; want none", len(cs), err)
	}
}

// A chain damaged in the database is reported, naming the certificate and
// the database, rather than returned empty.
func TestDamagedChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := sqlstoretest.SQLiteDSN(t)
	db := open(t, path)
	c, err := db.AddCertificate(ctx, kvmCert("web", 1))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.SQL().ExecContext(ctx, `UPDATE certificates SET chain = ? WHERE id = ?`, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.Certificates(ctx, certstore.Filter{})
	if !errors.Is(err, certstore.ErrInvalidCertificate) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"web"`) {
		t.Errorf("Certificates with a damaged chain: got %v, want ErrInvalidCertificate naming %q and the database", err, "web")
	}
}

// Hypervisors are matched with strings.EqualFold in both dialects, also
// beyond ASCII, where SQL's upper() and lower() differ between SQLite and
// PostgreSQL.
func TestHypervisorFoldingInSQL(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := open(t, dsn)
		for i, hv := range []string{"Ärger", "ǅungla", "Σίσυφος"} {
			c := kvmCert("h"+strconv.Itoa(i), 1)
			c.Hypervisor = hv
			if _, err := db.AddCertificate(ctx, c); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{strings.ToUpper(hv), strings.ToLower(hv), strings.ToTitle(hv)} {
				if !strings.EqualFold(q, hv) {
					continue
				}
				cs, err := db.Certificates(ctx, certstore.Filter{Hypervisor: q})
				if err != nil || len(cs) != 1 || cs[0].Hypervisor != hv {
					t.Errorf("Certificates(hypervisor %q): got %v, %v; want the certificate for %q", q, cs, err, hv)
				}
				dup := kvmCert(c.Alias, 1)
				dup.Hypervisor = q
				if _, err := db.AddCertificate(ctx, dup); !errors.Is(err, certstore.ErrDuplicateAlias) {
					t.Errorf("AddCertificate(%q, hypervisor %q) beside %q: got %v, want ErrDuplicateAlias", c.Alias, q, hv, err)
				}
			}
		}
	})
}

// Zero times are stored as NULL and come back zero; revoking at the zero
// time, which would leave the certificate active, changes nothing, as in
// certstore.MemoryDB.
func TestZeroTimes(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := open(t, dsn)
		c := kvmCert("web", 1)
		c.Created = time.Time{}
		c, err := db.AddCertificate(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.RevokeCertificate(ctx, c.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := db.PutHostState(ctx, certstore.HostState{Cert: c.ID, Host: 1, Status: certstore.Pending}); err != nil {
			t.Fatal(err)
		}
		cs, err := db.Certificates(ctx, certstore.Filter{})
		if err != nil || len(cs) != 1 || !cs[0].Created.IsZero() || !cs[0].Active() {
			t.Fatalf("Certificates: got %+v, %v; want one active certificate with a zero Created", cs, err)
		}
		if _, err := db.AddCertificate(ctx, kvmCert("web", 1)); !errors.Is(err, certstore.ErrDuplicateAlias) {
			t.Errorf("AddCertificate(web) after revoking web at the zero time: got %v, want ErrDuplicateAlias", err)
		}
		states, err := db.HostStates(ctx, c.ID, 1)
		if err != nil || len(states) != 1 || !states[0].Updated.IsZero() {
			t.Errorf("HostStates: got %+v, %v; want one state with a zero Updated", states, err)
		}
	})
}
