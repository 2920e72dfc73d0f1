package pad_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
)

func Example() {
	owner, _ := party.Generate()
	reader, _ := party.Generate()
	data := "id,age,diagnosis\n1,54,benign\n"

	// The owner seals the data to itself and a reader, with a policy attached.
	var sealed bytes.Buffer
	_, err := pad.Seal(&sealed, strings.NewReader(data), pad.SealOptions{
		Signer:     owner,
		Recipients: []*party.Identity{owner.Identity(), reader.Identity()},
		Policy:     []byte("purpose: research\n"),
		PolicyType: "application/styx-policy+yaml",
		Size:       int64(len(data)),
	})
	if err != nil {
		log.Fatal(err)
	}

	// Anyone can inspect the header and check who signed it.
	h, err := pad.Inspect(bytes.NewReader(sealed.Bytes()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed by the owner:", h.Signer.Equal(owner.Identity()), "recipients:", len(h.Wraps))

	// The reader opens it; every chunk authenticates before it is returned.
	_, r, err := pad.Open(bytes.NewReader(sealed.Bytes()), reader)
	if err != nil {
		log.Fatal(err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(plain))
	// Output:
	// signed by the owner: true recipients: 2
	// id,age,diagnosis
	// 1,54,benign
}
