// Package certstore manages the certificates KVM agents trust when they
// download templates directly from mirrors: it probes a URL's redirect chain
// hop by hop and says which certificate is missing or wrong, completes
// incomplete chains through AIA, keeps a registry of certificates scoped to
// zones and hosts, syncs it to the hosts' trust stores, and writes JKS,
// PKCS12 and PEM stores and *x509.CertPool values for the download package.
package certstore
