package node

import (
	"context"
	"fmt"
	"testing"

	"github.com/styx-tee/styx/pipeline"
)

// A two-stage pipeline (joint training, then fine-tuning on the model it produced) runs on the
// real node; the second stage's input is the first stage's output, and a stage whose policy
// check fails stops the pipeline with the reason.
func TestPipelineOnNode(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, t.TempDir())
	h1k, h2k, clinicK := newKey(t), newKey(t), newKey(t)
	h1, h2 := n.client(t, h1k), n.client(t, h2k)
	train := addProgram(t, h1, "examples/programs/svmtrain", false)
	vars := map[string]string{"h1": h1k.Identity().ID().String(), "h2": h2k.Identity().ID().String(),
		"clinic": clinicK.Identity().ID().String(), "train": train, "stats": train, "count": train, "predict": train}
	shares, _ := wdbcShares(t, 2)
	vars["owner"], vars["input"] = vars["h1"], ""
	p1 := upload(t, h1, sealTo(t, h1k, n.Cluster.Identity(), expand(hospitalPolicy, vars), "text/csv", shares[0]))
	vars["owner"] = vars["h2"]
	p2 := upload(t, h2, sealTo(t, h2k, n.Cluster.Identity(), expand(hospitalPolicy, vars), "text/csv", shares[1]))

	manifest := fmt.Sprintf(`pipeline: train-then-tune
purpose: cancer-research
stages:
  - name: tune
    program: %[1]s
    inputs: {model: train.model, b: %[3]s}
    outputs: [model:model]
    params: {epochs: 3}
  - name: train
    program: %[1]s
    inputs: {a: %[2]s, b: %[3]s}
    outputs: [model:model]
    params: {epochs: 10}
`, train, p1.ID, p2.ID)
	m, err := pipeline.Parse([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Run(ctx, h1, nil)
	if err != nil || !res.OK {
		t.Fatalf("pipeline: %+v %v", res, err)
	}
	model := res.Stages[0].Job.Outputs["model"]
	tuned, err := h1.Pad(ctx, res.Stages[1].Job.Outputs["model"])
	if err != nil {
		t.Fatal(err)
	}
	if len(tuned.Parents) != 2 || (tuned.Parents[0] != model && tuned.Parents[1] != model) {
		t.Fatalf("fine-tuned model's parents %v do not include the trained model %s", tuned.Parents, model)
	}

	// The clinic is no consortium member: its pipeline stops at the first stage with the reason.
	res, err = m.Run(ctx, n.client(t, clinicK), nil)
	if err != nil || res.OK || len(res.Stages) != 1 || res.Stages[0].Error == "" {
		t.Fatalf("outsider's pipeline: %+v %v", res, err)
	}
}
