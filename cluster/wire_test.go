package cluster

import (
	"errors"
	"strings"
	"testing"

	"github.com/styx-tee/styx/tee"
)

func TestJoinOverTheWire(t *testing.T) {
	a, _ := Init(simConfig(t, goodMeasurement))
	nonce := NewNonce()
	j, _ := NewJoiner(simConfig(t, goodMeasurement), nonce)
	req, err := ParseJoinRequest(j.Request().Marshal())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Admit(req, nonce)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseJoinResponse(resp.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	n, err := j.Complete(parsed)
	if err != nil || !n.Identity().Equal(a.Identity()) {
		t.Fatalf("%v", err)
	}
	good := string(j.Request().Marshal())
	for name, in := range map[string]string{
		"unknown field": strings.Replace(good, `{"identity"`, `{"x":1,"identity"`, 1),
		"trailing":      good + "{}",
		"bad identity":  strings.Replace(good, `"identity":"styx1`, `"identity":"styx2`, 1),
		"too big":       good + strings.Repeat(" ", MaxJoinMessageSize),
	} {
		if _, err := ParseJoinRequest([]byte(in)); !errors.Is(err, tee.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseJoinResponse([]byte(`{"wrap":""}`)); !errors.Is(err, tee.ErrMalformed) {
		t.Errorf("empty wrap: %v", err)
	}
	if _, err := ParseJoinResponse([]byte(`{"wrap":"AAAA","bundle":{"version":1}}`)); !errors.Is(err, tee.ErrMalformed) {
		t.Errorf("bad bundle: %v", err)
	}
}

func FuzzParseJoin(f *testing.F) {
	f.Add([]byte(`{"identity":"styx1","nonce":"AAAA","evidence":{"type":"sim","data":"AA=="}}`))
	f.Add([]byte(`{"wrap":"AAAA","bundle":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := ParseJoinRequest(data); err != nil && !errors.Is(err, tee.ErrMalformed) {
			t.Fatal(err)
		}
		if _, err := ParseJoinResponse(data); err != nil && !errors.Is(err, tee.ErrMalformed) {
			t.Fatal(err)
		}
	})
}
