package registrytest

import (
	"fmt"
	"sync"

	"github.com/directdl/directdl/certstore"
)

// spec describes a certificate to add: its alias, chain length, zone,
// hypervisor and host scope.
type spec struct {
	alias string
	n     int
	zone  certstore.ZoneID
	hv    string
	host  certstore.HostID
}

// kvm is alias with a chain of n in zone 1 for KVM, for every host.
func kvm(alias string, n int) spec { return spec{alias, n, 1, certstore.KVM, 0} }

func (s spec) in(zone certstore.ZoneID) spec   { s.zone = zone; return s }
func (s spec) on(hv string) spec               { s.hv = hv; return s }
func (s spec) forHost(h certstore.HostID) spec { s.host = h; return s }
func (s spec) certificate() certstore.Certificate {
	c := cert(s.alias, s.n)
	c.Zone, c.Hypervisor, c.Host = s.zone, s.hv, s.host
	return c
}

// duplicateCase adds existing, revokes them when revoke is set, then adds
// add, which must fail naming existing[holder] and alias, or, when holder
// is -1, succeed.
type duplicateCase struct {
	name     string
	existing []spec
	revoke   bool
	add      spec
	holder   int
	alias    string
}

var duplicateCases = []duplicateCase{
	{name: "same-alias", existing: []spec{kvm("web", 1)}, add: kvm("web", 1), holder: 0, alias: "web"},
	{name: "alias-case", existing: []spec{kvm("web", 1)}, add: kvm("WEB", 1), holder: 0, alias: "web"},
	{name: "hypervisor-case", existing: []spec{kvm("web", 1)}, add: kvm("web", 1).on("kvm"), holder: 0, alias: "web"},
	// KELVIN SIGN, which strings.EqualFold takes for k and K.
	{name: "hypervisor-unicode-case", existing: []spec{kvm("web", 1)}, add: kvm("web", 1).on("\u212aVM"), holder: 0, alias: "web"},
	// "web" with a chain of two holds web and web-2.
	{name: "entry-alias", existing: []spec{kvm("web", 2)}, add: kvm("web-2", 1), holder: 0, alias: "web-2"},
	{name: "entry-alias-reverse", existing: []spec{kvm("web-2", 1)}, add: kvm("web", 2), holder: 0, alias: "web-2"},
	{name: "entry-alias-chain-of-3", existing: []spec{kvm("web", 3)}, add: kvm("web-3", 2), holder: 0, alias: "web-3"},
	{name: "host-scopes", existing: []spec{kvm("web", 1).forHost(5)}, add: kvm("web", 1).forHost(6), holder: 0, alias: "web"},
	{name: "host-and-zone", existing: []spec{kvm("web", 1)}, add: kvm("web", 1).forHost(6), holder: 0, alias: "web"},
	{name: "holder-among-others", existing: []spec{kvm("web", 2).in(2), kvm("web", 1).on("VMware"), kvm("web-2", 1)},
		add: kvm("web", 2), holder: 2, alias: "web-2"},
	{name: "other-zone", existing: []spec{kvm("web", 2)}, add: kvm("web", 2).in(2), holder: -1},
	{name: "other-hypervisor", existing: []spec{kvm("web", 2)}, add: kvm("web", 2).on("VMware"), holder: -1},
	{name: "no-overlap", existing: []spec{kvm("web", 2)}, add: kvm("web-3", 2), holder: -1},
	{name: "prefix", existing: []spec{kvm("web", 1)}, add: kvm("web-2", 1), holder: -1},
	{name: "revoked-holder", existing: []spec{kvm("web", 2), kvm("web-3", 1)}, revoke: true, add: kvm("web", 3), holder: -1},
}

func duplicateTests() []test {
	var tests []test
	for _, dc := range duplicateCases {
		tests = append(tests, test{dc.name, func(e *env) { testDuplicate(e, dc) }})
	}
	return append(tests,
		test{"concurrent-same-alias", testConcurrentSameAlias},
		test{"concurrent-entry-aliases", testConcurrentEntryAliases},
		test{"concurrent-zones", testConcurrentZones},
	)
}

func testDuplicate(e *env, dc duplicateCase) {
	var existing []certstore.Certificate
	for _, s := range dc.existing {
		existing = append(existing, e.add(s.certificate()))
	}
	if dc.revoke {
		for i := range existing {
			e.revoke(existing[i].ID, base.Add(1))
			existing[i].Revoked = base.Add(1)
		}
	}
	c := dc.add.certificate()
	got, err := e.db.AddCertificate(e.ctx, c)
	what := fmt.Sprintf("AddCertificate(%q, zone %d, %q, host %d, %d certificates)", c.Alias, c.Zone, c.Hypervisor, c.Host, len(c.Chain))
	if dc.holder < 0 {
		e.ok(err, "%s", what)
		want := c
		want.ID = got.ID
		e.sameCert(what, e.get(got.ID), want)
		e.sameCerts("Certificates after "+what, e.list(certstore.Filter{IncludeRevoked: true}), append(existing, want))
		return
	}
	holder := e.get(existing[dc.holder].ID)
	e.isDuplicate(what, err, c, holder, dc.alias)
	e.sameCerts("Certificates after a refused "+what, e.list(certstore.Filter{IncludeRevoked: true}), existing)
}

// racers is how many uploads the concurrent tests run at once.
const racers = 16

// race adds the certificates at once and returns the one that was added,
// checking that every other one was refused naming it.
func (e *env) race(cs []certstore.Certificate, alias func(winner, loser certstore.Certificate) string) certstore.Certificate {
	e.t.Helper()
	type result struct {
		c   certstore.Certificate
		err error
	}
	results := make([]result, len(cs))
	parallel(len(cs), func(i int) {
		got, err := e.db.AddCertificate(e.ctx, cs[i])
		results[i] = result{got, err}
	})
	var winners []certstore.Certificate
	for _, r := range results {
		if r.err == nil {
			winners = append(winners, r.c)
		}
	}
	if len(winners) != 1 {
		e.t.Fatalf("%d concurrent AddCertificate of colliding aliases: %d succeeded (%v), want exactly 1", len(cs), len(winners), ids(winners))
	}
	winner := e.get(winners[0].ID)
	for i, r := range results {
		if r.err != nil {
			e.isDuplicate(fmt.Sprintf("concurrent AddCertificate(%q) #%d", cs[i].Alias, i), r.err, cs[i], winner, alias(winner, cs[i]))
		}
	}
	e.sameCerts("Certificates after the race", e.list(certstore.Filter{IncludeRevoked: true}), []certstore.Certificate{winners[0]})
	return winner
}

// testConcurrentSameAlias adds one alias 16 times at once: a check
// followed by an insert, without a constraint or a lock, lets several in.
func testConcurrentSameAlias(e *env) {
	cs := make([]certstore.Certificate, racers)
	for i := range cs {
		cs[i] = cert("web", 1)
	}
	e.race(cs, func(_, _ certstore.Certificate) string { return "web" })
}

// testConcurrentEntryAliases races "web" with a chain of two (web, web-2)
// against "web-2" alone: they collide on an entry alias only.
func testConcurrentEntryAliases(e *env) {
	cs := make([]certstore.Certificate, racers)
	for i := range cs {
		if i%2 == 0 {
			cs[i] = cert("web", 2)
		} else {
			cs[i] = cert("web-2", 1)
		}
	}
	// The error names the first of the winner's entry aliases that the
	// loser also has.
	e.race(cs, func(winner, loser certstore.Certificate) string {
		if winner.Alias == "web" && loser.Alias == "web" {
			return "web"
		}
		return "web-2"
	})
}

// testConcurrentZones adds one alias in 16 zones at once: all succeed.
func testConcurrentZones(e *env) {
	var (
		mu    sync.Mutex
		added = map[certstore.ID]certstore.ZoneID{}
	)
	cs := make([]certstore.Certificate, racers)
	for i := range cs {
		cs[i] = cert("web", 2)
		cs[i].Zone = certstore.ZoneID(i + 1)
	}
	parallel(racers, func(i int) {
		got, err := e.db.AddCertificate(e.ctx, cs[i])
		if err != nil {
			e.t.Errorf("AddCertificate(%q, zone %d) at once with the same alias in other zones: %v", cs[i].Alias, cs[i].Zone, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if z, dup := added[got.ID]; dup {
			e.t.Errorf("zones %d and %d: both got ID %d", z, cs[i].Zone, got.ID)
		}
		added[got.ID] = cs[i].Zone
	})
	if n := len(e.list(certstore.Filter{Alias: "web"})); n != racers {
		e.t.Errorf("Certificates(alias web): got %d, want %d", n, racers)
	}
}
