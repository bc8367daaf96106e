// Command etcd is etcd's own server entry point, built from the Go module
// proxy so the Kubernetes API server used by the tests needs no download
// outside the package registries.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
