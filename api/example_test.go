package api_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/party"
)

// A consumer uploads a program and runs a job over an owner's Pad on a node it attested
// earlier (styx attest recorded the node's TLS key pin).
func Example() {
	ctx := context.Background()
	key, err := party.LoadKeyFile("consumer.key")
	if err != nil {
		log.Fatal(err)
	}
	pinFile, _ := cluster.DefaultPinFile()
	tlsConfig, err := cluster.NewPinStore(pinFile).TLSConfig("https://127.0.0.1:7443")
	if err != nil {
		log.Fatal(err) // not attested yet
	}
	c, err := api.NewClient(api.ClientConfig{BaseURL: "https://127.0.0.1:7443", Key: key, TLS: tlsConfig})
	if err != nil {
		log.Fatal(err)
	}
	wasm, err := os.Open("train.wasm")
	if err != nil {
		log.Fatal(err)
	}
	defer wasm.Close()
	prog, err := c.AddProgram(ctx, wasm)
	if err != nil {
		log.Fatal(err)
	}
	st, err := c.SubmitJob(ctx, &api.JobSpec{
		Program: prog.SHA256,
		Inputs:  map[string]string{"train": "styxpad1…"},
		Purpose: "cancer-research",
		Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}},
		Wait:    true,
	})
	var apiErr *api.Error
	if errors.Is(err, api.ErrDenied) && errors.As(err, &apiErr) {
		for _, r := range apiErr.Reasons {
			fmt.Println("denied:", r)
		}
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.State, st.Outputs["model"])
}
