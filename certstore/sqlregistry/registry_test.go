package sqlregistry_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/certstore/registrytest"
)

// TestRegistryOnSQL runs a Registry on each dialect with hosts whose trust
// stores are PEM directories: what Sync records must survive reopening the
// database, and a revoke recorded before a restart is carried out after.
func TestRegistryOnSQL(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		dir := t.TempDir()
		var hosts certstore.HostList
		for i, name := range []string{"h1", "h2"} {
			p := filepath.Join(dir, name)
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			s, err := certstore.OpenFileStore(p, "")
			if err != nil {
				t.Fatal(err)
			}
			hosts = append(hosts, certstore.Host{ID: certstore.HostID(i + 1), Zone: 7, Up: true, Store: s})
		}
		db := open(t, dsn)
		reg, err := certstore.NewRegistry(db, hosts)
		if err != nil {
			t.Fatal(err)
		}
		res, err := reg.Upload(ctx, certstore.Upload{Alias: "ca", PEM: certstore.EncodePEM(registrytest.Chain(2)[1:]...), Zone: 7})
		if err != nil {
			t.Fatal(err)
		}
		id := res.Certificate.ID
		if err := res.Hosts[0].Err; err != nil {
			t.Fatal(err)
		}
		// Host 2 goes down; the certificate is revoked from the zone.
		hosts[1].Up = false
		if _, err := reg.Revoke(ctx, id, 7); err != nil {
			t.Fatal(err)
		}
		db.Close()

		// A new process: the records say what happened, and the first
		// sync after host 2 is back removes it there too.
		db = open(t, dsn)
		hosts[1].Up = true
		reg, err = certstore.NewRegistry(db, hosts)
		if err != nil {
			t.Fatal(err)
		}
		states, err := db.HostStates(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(states) != 2 || states[0].Status != certstore.Removed || states[1].Status != certstore.Synced {
			t.Fatalf("states after reopening: %+v", states)
		}
		if e, _ := hosts[1].Store.Entries(ctx); len(e) != 1 {
			t.Fatalf("down host 2 changed: %v", e)
		}
		rep, err := reg.Sync(ctx)
		if err != nil || rep.Err() != nil {
			t.Fatal(err, rep.Err())
		}
		if e, _ := hosts[1].Store.Entries(ctx); len(e) != 0 {
			t.Errorf("host 2 still holds %v", e)
		}
		if s, _ := db.HostStates(ctx, id, 2); len(s) != 1 || s[0].Status != certstore.Removed {
			t.Errorf("host 2 state %+v", s)
		}
	})
}
