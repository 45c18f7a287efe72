// Module pause is the sandbox image's only program: it holds a pod's namespaces until told to stop.
module phonefleet.dev/hack/node/pause

go 1.26.0
