package nfs

// WithPortmapperPort lets the tests run a portmapper on a free port.
var WithPortmapperPort = withPortmapperPort
