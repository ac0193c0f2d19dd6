module github.com/directdl/directdl/bench/probe

go 1.24.0
