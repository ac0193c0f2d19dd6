module github.com/directdl/directdl

go 1.24

require github.com/opencontainers/go-digest v1.0.0
