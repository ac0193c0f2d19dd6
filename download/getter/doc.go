// Package getter lets the download engine fetch sources it does not read
// itself (S3, Google Cloud Storage, git, Mercurial, local files) through
// github.com/hashicorp/go-getter v1, while keeping the engine's guarantees:
// the file is verified (Request.Size, checksum) and moved into place
// atomically, and on any failure nothing is left behind.
//
// It is a module of its own (github.com/directdl/directdl/download/getter)
// so that programs which do not import it do not link go-getter, the AWS
// SDK and the Google Cloud client, about 800 packages.
//
// # Use
//
//	c, _ := download.New(download.WithPolicy(policy))
//	g, _ := getter.New(c, getter.WithPolicy(policy))
//	res, err := g.Get(ctx, download.Request{
//		URL:  "s3::https://s3.eu-west-1.amazonaws.com/bucket/disk.qcow2?checksum=sha256:...",
//		Path: "/var/lib/images/disk.qcow2",
//	})
//
// # Routing
//
// A plain http or https URL, or one forced with http:: or https::, goes to
// download.Client.Get: segmented, resumable, verified while downloading.
// go-getter's HttpGetter is never used, with its blind resume, its
// broken size limit and its .netrc and X-Terraform-Get handling.
//
// Every other source runs inside download.Client.GetWith: go-getter writes
// a fresh file in a private directory beside the destination, then the
// engine hashes it, checks it and renames it into place. The source is
// written as go-getter writes it:
//
//   - s3::https://s3.amazonaws.com/bucket/key, bucket.s3.amazonaws.com/key,
//     s3::https://s3.REGION.amazonaws.com/bucket/key, or
//     s3::http://HOST:PORT/bucket/key?region=R for an S3-compatible store.
//     Credentials come from the AWS SDK's usual chain (environment,
//     ~/.aws, instance role), or from the aws_access_key_id,
//     aws_access_key_secret and aws_access_token parameters; ?version=
//     picks an object version.
//   - gcs::https://www.googleapis.com/storage/v1/bucket/object, with
//     Google's default credentials or GOOGLE_OAUTH_ACCESS_TOKEN.
//   - git::https://host/repo.git//path/in/repo?ref=v1 (also ssh://,
//     git://, git@host:repo.git//path, and file:// when SchemeFile is
//     enabled); ?depth= and ?sshkey= as in go-getter. Without a //, the last
//     path element names a file at the top of the repository, as in
//     go-getter. hg:: is the same for Mercurial, with ?rev=.
//   - file:///abs/path, file::/abs/path or /abs/path.
//
// # Schemes
//
// Which getters run is explicit: WithSchemes, default DefaultSchemes (s3,
// gcs, git). Anything else, and a known scheme that is not enabled, is
// refused with ErrScheme and a message naming the scheme and the option
// that enables it. SchemeFile is off by default because it reads local
// files: a caller that lets untrusted users name sources must not enable
// it (git and hg from local paths need it too, for the same reason).
//
// # What go-getter is not allowed to do
//
// Each fetch builds its own go-getter Client and getters, so nothing is
// shared between calls (go-getter's package-level getters keep per-client
// state). The settings are those the project's research on go-getter
// v1.8.10 recommends:
//
//   - Mode ClientModeFile: one file, never a directory, never a
//     //subdirectory copy.
//   - Detectors: only those for the enabled schemes' shorthands (S3, GCS,
//     git@host:path, absolute paths); never GitHub, GitLab or Bitbucket,
//     which turn bare host names into clones (Bitbucket's asks
//     bitbucket.org while detecting). Detection runs once, before the
//     fetch; go-getter's Client gets the detected, forced URL and an empty
//     list.
//   - Decompressors: an empty map (nil would mean every default), so a
//     .tar.gz is stored as it is; ?archive= is refused.
//   - ?checksum= is taken out of the URL and verified by the engine, never
//     by go-getter (which verifies after writing and leaves a bad file in
//     place). It must agree with Request.Checksum and Request.Sum when those
//     are set. checksum=file:URL is refused: the checksum file would be
//     fetched by the same getters without any of the engine's checks; give
//     the checksum itself.
//   - DisableSymlinks, Insecure false, Umask 0o022, FileGetter{Copy: true}:
//     a file source is copied, never linked, and a source that is a
//     symbolic link is refused. The engine refuses anything at the
//     temporary path that is not a regular file.
//   - git and hg: go-getter clones into the engine's private directory,
//     and this package copies the file out inside an os.Root, refusing
//     symbolic links; go-getter's own GetFile would follow a link
//     committed in the repository to any file on the machine.
//   - ProgressListener: go-getter's only hook on a streaming body (the S3
//     getter calls it). It fails the fetch with download.ErrSizeMismatch
//     at the first byte past Request.Size (when positive), or as soon as
//     the announced length is larger, and with download.ErrStalled when no
//     byte arrives for the idle timeout (WithIdleTimeout, default 5s),
//     which is not a deadline on the whole transfer. The GCS getter streams
//     without the hook, and git, hg and file copy local data, so for them
//     the size is checked when the fetch ends (and before the copy, for a
//     repository file).
//   - No netrc, no X-Terraform-Get, no HEAD-then-Range resume: those
//     belong to the HttpGetter, which is not registered.
//
// # Networking and its limits
//
// go-getter v1 gives no way to hand an http.Client to the S3 or GCS
// getters (they build AWS and Google clients from the environment), and
// git and hg run as programs. So the download Client's address policy does
// not guard their connections. What this package does instead is resolve
// the source's host and check every address against the policy given with
// WithPolicy (default: the zero Policy, which refuses loopback, link-local
// and cloud metadata addresses) before the fetch. That stops
// s3::http://169.254.169.254/... and git::https://127.0.0.1/..., but not a
// name that resolves elsewhere when the getter connects (DNS rebinding),
// nor the AWS and Google SDKs' own calls to their instance metadata
// services for credentials, nor git following a redirect. Where that
// matters, run these getters behind an egress proxy or firewall, or enable
// only the schemes that are needed. The git program reads the user's git
// configuration and may ask for credentials on a terminal: set
// GIT_TERMINAL_PROMPT=0 in the environment of unattended processes.
//
// No go-getter getter resumes: an interrupted fetch starts again from the
// beginning.
//
// # Errors and concurrency
//
// A source this package refuses before fetching gives an error matching
// ErrScheme (a scheme not enabled) or ErrSource (a source it cannot fetch
// as asked), both also matching download.ErrRequest; an address the policy
// refuses matches download.ErrDenied. After that the engine's errors apply
// unchanged: a *download.ChecksumError for wrong content, a
// *download.HTTPError for an http or https answer, and so on. A Getter is
// safe for concurrent use by multiple goroutines; share one, as its Client
// is shared.
package getter
