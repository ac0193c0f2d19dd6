module github.com/directdl/directdl

go 1.24
