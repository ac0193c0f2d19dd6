package agent

import (
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/directdl/directdl/certstore"
)

func (a *Agent) listCerts(w http.ResponseWriter, r *http.Request) {
	entries, err := a.store.Entries(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, &ErrorBody{Error: err.Error()})
		return
	}
	out := CertList{Entries: make([]CertEntry, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, certEntry(e))
	}
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].Alias < out.Entries[j].Alias })
	writeJSON(w, http.StatusOK, out)
}

func certEntry(e certstore.Entry) CertEntry {
	d := certstore.Describe(e.Cert)
	return CertEntry{
		Alias: e.Alias, Subject: d.Subject, Issuer: d.Issuer,
		NotBefore: d.NotBefore, NotAfter: d.NotAfter, SHA256: d.SHA256, IsCA: d.IsCA,
		PEM: string(certstore.EncodePEM(e.Cert)),
	}
}

// importCert adds or replaces one certificate under the alias: the
// download client trusts it from its next connection on.
func (a *Agent) importCert(w http.ResponseWriter, r *http.Request) {
	alias := r.PathValue("alias")
	if err := certstore.ValidateAlias(alias); err != nil {
		writeError(w, http.StatusBadRequest, &ErrorBody{Error: err.Error()})
		return
	}
	req, err := DecodeImportRequest(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, &ErrorBody{Error: err.Error()})
		return
	}
	certs, err := certstore.ParseCertificates([]byte(req.PEM))
	if err != nil {
		writeError(w, http.StatusBadRequest, &ErrorBody{Error: badField("pem", "%v", err).Error()})
		return
	}
	if len(certs) != 1 {
		writeError(w, http.StatusBadRequest, &ErrorBody{Error: badField("pem", "holds %d certificates; import each under its own alias (a registry uses ALIAS, ALIAS-2, ALIAS-3, ...)", len(certs)).Error()})
		return
	}
	e := certstore.Entry{Alias: alias, Cert: certs[0]}
	if err := a.store.Import(r.Context(), e); err != nil {
		writeError(w, storeStatus(err), &ErrorBody{Error: err.Error()})
		return
	}
	a.log.Info("certificate imported", "alias", alias, "subject", certs[0].Subject.String())
	writeJSON(w, http.StatusOK, certEntry(e))
}

func (a *Agent) deleteCert(w http.ResponseWriter, r *http.Request) {
	alias := r.PathValue("alias")
	if err := a.store.Delete(r.Context(), alias); err != nil {
		status := storeStatus(err)
		msg := err.Error()
		if status == http.StatusNotFound {
			msg = fmt.Sprintf("no trusted certificate with alias %q: %v", alias, err)
		}
		writeError(w, status, &ErrorBody{Error: msg})
		return
	}
	// Pooled connections were verified with the certificate still
	// trusted; the next download must verify afresh.
	a.client.CloseIdleConnections()
	a.log.Info("certificate revoked", "alias", alias)
	w.WriteHeader(http.StatusNoContent)
}

// storeStatus is the HTTP status for a trust store's error.
func storeStatus(err error) int {
	switch {
	case errors.Is(err, certstore.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, certstore.ErrInvalidAlias), errors.Is(err, certstore.ErrInvalidCertificate):
		return http.StatusBadRequest
	case errors.Is(err, certstore.ErrNeedsKeytool):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}
