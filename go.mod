module github.com/directdl/directdl

go 1.24.0

require github.com/opencontainers/go-digest v1.0.0

require (
	github.com/pavlo-v-chernykh/keystore-go/v4 v4.5.0
	golang.org/x/sync v0.18.0
	golang.org/x/sys v0.41.0
	golang.org/x/term v0.40.0
	software.sslmate.com/src/go-pkcs12 v0.7.4
)

require golang.org/x/crypto v0.48.0 // indirect
