// Package agent is a small KVM-side direct download agent built only on
// the public packages of directdl: download, certstore, qcow2 and migrate.
// It plays the part of CloudStack's KVM agent for direct download, over an
// authenticated HTTP JSON API instead of CloudStack's agent protocol.
//
// An Agent is an http.Handler. Make one with New, serve it with any
// http.Server, and Close it when done:
//
//	store, err := certstore.OpenFileStore("/etc/directdl/trust.jks", "changeit")
//	a, err := agent.New(agent.Config{Pool: "/var/lib/libvirt/images", Token: token, TrustStore: store})
//	srv := &http.Server{Addr: "127.0.0.1:8250", Handler: a}
//	go srv.ListenAndServe()
//	...
//	srv.Shutdown(ctx)
//	a.Close(ctx) // cancels downloads; what they fetched is kept for a resume
//
// # API
//
// Every endpoint but GET /v1/health needs "Authorization: Bearer TOKEN".
// Bodies are JSON; errors are {"error": "..."} naming the problem, with
// 400 for bad input, 401 without the token, 404, 409 for a conflict.
//
//	GET    /v1/health                  {"ok": true, "version": ...}
//	POST   /v1/downloads               DownloadRequest -> 202 Job
//	GET    /v1/downloads               JobList
//	GET    /v1/downloads/{id}          Job
//	DELETE /v1/downloads/{id}          cancel; Job once it has stopped
//	GET    /v1/truststore              CertList
//	PUT    /v1/truststore/{alias}      ImportRequest -> CertEntry
//	DELETE /v1/truststore/{alias}      revoke: 204, or 404 when absent
//	GET    /v1/inventory[?digests=compute]   Inventory
//	POST   /v1/migrations/prepare      migrate.Plan -> migrate.Prepared
//
// # Downloads
//
// A job waits for one of Config.Parallel slots, then downloads with the
// agent's download.Client: in parallel, verified against the checksum
// while it arrives, through the URL policy, trusting the system roots and
// the trust store as it is at each new connection. The file lands in the
// hidden directory IncomingDir of the pool; a qcow2 image must pass
// qcow2.Vet (a template naming a backing file or an external data file is
// refused), and only then is the file linked into the pool. A failed
// job leaves nothing new in the pool. A cancelled one (DELETE, or Close)
// leaves what it fetched in IncomingDir, and the same request resumes it.
// One job at a time per name: a second request for a name being
// downloaded is a 409, and so is a name the pool already holds (a download
// never replaces a file of the pool).
//
// # State
//
// Jobs live in memory only; nothing is persisted but what the SDK
// persists: the trust store file, the pool's files, and the download
// engine's partial files. After a restart the orchestrator sends its
// requests again, and interrupted downloads resume. Digests recorded at
// download are kept in memory too, attached to the file's identity
// (inode, size, modification time); after a restart, GET
// /v1/inventory?digests=compute hashes the files once.
//
// # Concurrency
//
// An Agent is safe for concurrent use; every goroutine it starts ends by
// the time Close returns.
package agent
