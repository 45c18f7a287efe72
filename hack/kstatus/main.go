// Command kstatus prints the kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status) of each object in
// the JSON on standard input (one object or a List, as `kubectl get -o json` prints them): one
// JSON line per object with its namespace, name, status and message.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func fail(code int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "kstatus: "+format+"\n", args...)
	os.Exit(code)
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(2, "reading standard input: %v", err)
	}
	// The API machinery's own decoder: numbers become int64 as the accessors expect.
	decoded, _, err := unstructured.UnstructuredJSONScheme.Decode(data, nil, nil)
	if err != nil {
		fail(2, "decoding standard input: %v", err)
	}
	var objects []unstructured.Unstructured
	switch value := decoded.(type) {
	case *unstructured.UnstructuredList:
		objects = value.Items
	case *unstructured.Unstructured:
		objects = []unstructured.Unstructured{*value}
	default:
		fail(2, "unexpected object %T", decoded)
	}
	encoder := json.NewEncoder(os.Stdout)
	for i := range objects {
		object := &objects[i]
		computed, err := status.Compute(object)
		if err != nil {
			fail(1, "%s/%s: %v", object.GetNamespace(), object.GetName(), err)
		}
		line := result{object.GetNamespace(), object.GetName(), computed.Status.String(), computed.Message}
		if err := encoder.Encode(line); err != nil {
			fail(1, "writing: %v", err)
		}
	}
}
