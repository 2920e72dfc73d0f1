package cluster_test

import (
	"context"
	"fmt"
	"log"

	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
)

// A program attests a node against the owners' reference values and talks to it over TLS pinned
// to the attested key.
func ExampleClient_Dial() {
	ref, err := tee.LoadReferenceValues("reference.json")
	if err != nil {
		log.Fatal(err)
	}
	key, err := party.LoadKeyFile("consumer.key")
	if err != nil {
		log.Fatal(err)
	}
	c, att, err := (&cluster.Client{Reference: ref}).Dial(context.Background(), "https://node.example:7443", key)
	if err != nil {
		log.Fatal(err) // not the node the reference values describe, or an impostor's TLS key
	}
	fmt.Println("attested", att.Claims)
	pads, err := c.ListPads(context.Background(), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(pads.Pads), "pads")
}
