// Command pause sleeps until SIGTERM or SIGINT: the pod sandbox's process for a node with no
// registry to pull the upstream pause image from.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
