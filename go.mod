module github.com/directdl/directdl

go 1.24.0

require github.com/opencontainers/go-digest v1.0.0

require golang.org/x/sync v0.18.0
