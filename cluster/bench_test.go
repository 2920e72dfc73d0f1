package cluster

import "testing"

func BenchmarkBundleSim(b *testing.B) {
	n := testBundleNode(b)
	nonce := NewNonce()
	for b.Loop() {
		if _, err := n.Bundle(nonce); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyBundleSim(b *testing.B) {
	n := testBundleNode(b)
	nonce := NewNonce()
	bundle, _ := n.Bundle(nonce)
	data := bundle.Marshal()
	ref := devRef()
	for b.Loop() {
		p, err := ParseBundle(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := p.Verify(ref, nil, nonce); err != nil {
			b.Fatal(err)
		}
	}
}
