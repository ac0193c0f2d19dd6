package registrytest

import (
	"context"

	"github.com/directdl/directdl/certstore"
)

var contextTests = []test{
	{"cancelled", testContextCancelled},
}

// testContextCancelled calls every method with a cancelled context: each
// fails with context.Canceled and changes nothing.
func testContextCancelled(e *env) {
	c := e.add(cert("web", 1))
	s := certstore.HostState{Cert: c.ID, Host: 1, Status: certstore.Synced, Updated: base}
	e.put(s)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()

	_, err := e.db.AddCertificate(ctx, cert("api", 1))
	e.is(err, context.Canceled, "AddCertificate with a cancelled context")
	_, err = e.db.Certificates(ctx, certstore.Filter{})
	e.is(err, context.Canceled, "Certificates with a cancelled context")
	err = e.db.RevokeCertificate(ctx, c.ID, base)
	e.is(err, context.Canceled, "RevokeCertificate with a cancelled context")
	_, err = e.db.HostStates(ctx, 0, 0)
	e.is(err, context.Canceled, "HostStates with a cancelled context")
	err = e.db.PutHostState(ctx, certstore.HostState{Cert: c.ID, Host: 2, Status: certstore.Pending, Updated: base})
	e.is(err, context.Canceled, "PutHostState with a cancelled context")

	e.sameCerts("Certificates after the cancelled calls", e.list(certstore.Filter{IncludeRevoked: true}), []certstore.Certificate{c})
	e.sameStates("HostStates after the cancelled calls", e.states(0, 0), []certstore.HostState{s})
}
