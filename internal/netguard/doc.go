// Package netguard decides which network addresses directdl may connect to,
// which redirects it may follow, and how URLs appear in errors and logs. It
// is the one place where that policy lives: the download engine and
// certstore's TLS probe and AIA fetcher all build their HTTP clients from
// it instead of each copying the rules.
//
// # Why
//
// A hypervisor agent downloads whatever URL an operator or an API user
// registered. Without a policy, http://169.254.169.254/latest/meta-data/
// hands the cloud's instance credentials to whoever registered the template
// (server-side request forgery), and http://127.0.0.1:8250/ reaches the
// agent's own management ports. Checking the host name of the URL is not
// enough: a name can resolve to a public address when it is validated and
// to 127.0.0.1 a second later when it is dialed (DNS rebinding), and a
// public URL can redirect to a private one. So the check runs on the
// resolved address, at the moment of connecting, for every connection,
// including each hop of a redirect chain.
//
// # What is denied by default
//
// The zero Policy refuses:
//
//   - loopback: 127.0.0.0/8, ::1;
//   - unspecified: 0.0.0.0/8 (Linux connects 0.0.0.0 to the local host) and ::;
//   - link-local: 169.254.0.0/16 and fe80::/10, which hold the metadata
//     services of most clouds;
//   - cloud metadata services outside link-local: 100.100.100.200 (Alibaba
//     Cloud) and fd00:ec2::254 (AWS over IPv6); 169.254.169.254 and
//     169.254.170.2 are reported by that name too;
//   - multicast (224.0.0.0/4, ff00::/8), broadcast (255.255.255.255) and the
//     reserved 240.0.0.0/4;
//   - the IPv4-mapped (::ffff:127.0.0.1), NAT64 (64:ff9b::7f00:1), 6to4
//     (2002:7f00:1::) and IPv4-compatible (::127.0.0.1) forms of all of the
//     above.
//
// Everything else is allowed, including private (10/8, 172.16/12,
// 192.168/16), shared (100.64.0.0/10, carrier-grade NAT) and unique-local
// (fc00::/7) addresses: template mirrors inside a data centre live there,
// and CloudStack's own URL check allows them. Deployments that must not
// reach them list them in Policy.Deny, or use Policy.OnlyAllowed.
//
// # Precedence
//
// The first matching rule decides: an explicit Deny prefix refuses; then
// an explicit Allow prefix allows (even a special address, so allowing
// 127.0.0.0/8 lets a test reach a loopback mirror); then, with
// OnlyAllowed, everything else is refused; then the default-denied ranges
// refuse; everything else is allowed. Deny beats Allow so that an operator
// can fence off a range whatever a broader Allow says; the Allow list is an
// exception list by default, as CloudStack's secstorage.allowed.internal.cidr
// is, and becomes an allow list only when OnlyAllowed says so.
//
// # Pieces
//
//   - Policy and Policy.CheckAddr: the rules, for one address.
//   - Dialer: a net.Dialer whose Control hook checks every address the
//     kernel is asked to connect to, with a connect timeout. WrapDialer
//     guards another dial function (a SOCKS proxy's, say) by resolving,
//     checking, and dialing the checked address literal.
//   - ConfigureTransport and NewTransport: an http.Transport that dials
//     only through the Dialer, with no proxy, no transparent gzip and
//     HTTP/1.1. A RoundTripper that does not use the Dialer bypasses all of
//     this.
//   - CheckRedirect: http.Client.CheckRedirect with a redirect limit, no
//     HTTPS to HTTP downgrade and only http(s); WithChain records the
//     redacted chain of one request.
//   - Redact, RedactString, RedactText, RedactError, SafeURL: URLs without
//     passwords and signed-URL secrets, for errors and slog.
//
// Errors carry the address, the host and the rule: *DeniedError (matching
// ErrDenied) and *RedirectError (matching ErrTooManyRedirects,
// ErrDowngrade or ErrScheme), found with errors.As through the *url.Error
// that net/http returns.
//
// # Use from download and certstore
//
// The download engine builds its client once:
//
//	d, err := netguard.NewDialer(policy, &net.Dialer{KeepAlive: 30 * time.Second})
//	client := &http.Client{
//		Transport:     netguard.NewTransport(d, tlsConfig),
//		CheckRedirect: netguard.CheckRedirect(0),
//	}
//
// and wraps every error it returns with RedactError and every URL it logs
// with SafeURL. certstore's probe follows redirects one hop at a time with
// the same Dialer, so each hop's addresses are checked, and its AIA fetcher
// uses the same client, so a certificate's caIssuers URL cannot point it at
// a metadata service either.
package netguard
