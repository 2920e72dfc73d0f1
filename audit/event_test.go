package audit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var goldenTime = time.Date(2026, 11, 24, 13, 14, 36, 120000000, time.UTC)

func TestRecordGolden(t *testing.T) {
	ev := Event{
		Kind:    KindDeny,
		Time:    goldenTime,
		Actor:   "styxid1consumer",
		Job:     "job-7",
		Pads:    []string{"pad-b", "pad-a"},
		Reasons: []string{"purpose <marketing> & not \"research\""},
		Details: map[string]string{"z": "last", "a": "first"},
	}
	got, err := MarshalRecord(&ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"kind":"deny","time":"2026-11-24T13:14:36.12Z","actor":"styxid1consumer","job":"job-7","pads":["pad-b","pad-a"],"reasons":["purpose \u003cmarketing\u003e \u0026 not \"research\""],"details":{"a":"first","z":"last"}}`
	if string(got) != want {
		t.Fatalf("canonical record\n got %s\nwant %s", got, want)
	}
	back, err := ParseRecord(got)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := MarshalRecord(back)
	if string(again) != want {
		t.Fatalf("round trip changed the record: %s", again)
	}
}

func TestRecordWithReceiptGolden(t *testing.T) {
	c := testClaims()
	ev := Event{Kind: KindJobDone, Time: goldenTime, Job: c.Job, Pads: c.pads(), Receipt: &c}
	got, err := MarshalRecord(&ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"kind":"job.done","time":"2026-11-24T13:14:36.12Z","job":"job-train-42","pads":["pad1hospitalA","pad1hospitalB","pad1model"],"receipt":{"kind":"job","job":"job-train-42","program":"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","inputs":[{"pad":"pad1hospitalA","policy":"sha256:aaaa"},{"pad":"pad1hospitalB","policy":"sha256:bbbb"}],"outputs":[{"pad":"pad1model","policy":"sha256:derived"}],"tee":{"type":"sim","measurement":"00ff","simulated":true}}}`
	if string(got) != want {
		t.Fatalf("canonical record\n got %s\nwant %s", got, want)
	}
	if _, err := ParseRecord(got); err != nil {
		t.Fatal(err)
	}
}

func TestParseRecordRefusesNonCanonical(t *testing.T) {
	good := `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","pads":["p"]}`
	if _, err := ParseRecord([]byte(good)); err != nil {
		t.Fatalf("good record refused: %v", err)
	}
	bad := map[string]string{
		"whitespace":        `{"v":1, "kind":"use","time":"2026-11-24T13:14:36.12Z","pads":["p"]}`,
		"trailing newline":  good + "\n",
		"trailing value":    good + `{}`,
		"field order":       `{"kind":"use","v":1,"time":"2026-11-24T13:14:36.12Z","pads":["p"]}`,
		"duplicate key":     `{"v":1,"kind":"use","kind":"use","time":"2026-11-24T13:14:36.12Z","pads":["p"]}`,
		"unknown field":     `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","pads":["p"],"x":1}`,
		"empty list":        `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","pads":[]}`,
		"null list":         `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","pads":null}`,
		"version 2":         `{"v":2,"kind":"use","time":"2026-11-24T13:14:36.12Z","pads":["p"]}`,
		"no version":        `{"kind":"use","time":"2026-11-24T13:14:36.12Z","pads":["p"]}`,
		"offset time":       `{"v":1,"kind":"use","time":"2026-11-24T14:14:36.12+01:00","pads":["p"]}`,
		"+00:00 time":       `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12+00:00","pads":["p"]}`,
		"trailing zero":     `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.120Z","pads":["p"]}`,
		"no time":           `{"v":1,"kind":"use","pads":["p"]}`,
		"escaped letter":    `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","pads":["\u0070"]}`,
		"raw html":          `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","reasons":["<"]}`,
		"upper kind":        `{"v":1,"kind":"Use","time":"2026-11-24T13:14:36.12Z"}`,
		"empty kind":        `{"v":1,"kind":"","time":"2026-11-24T13:14:36.12Z"}`,
		"space in pad":      `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","pads":["a b"]}`,
		"control in reason": `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","reasons":["a\u0007"]}`,
		"empty reason":      `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","reasons":[""]}`,
		"empty detail key":  `{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","details":{"":"x"}}`,
		"invalid utf8":      "{\"v\":1,\"kind\":\"use\",\"time\":\"2026-11-24T13:14:36.12Z\",\"reasons\":[\"\xff\"]}",
		"not an object":     `[1]`,
		"empty":             ``,
		"bad receipt kind":  `{"v":1,"kind":"job.done","time":"2026-11-24T13:14:36.12Z","receipt":{"kind":"x","job":"j","tee":{"type":"sim","simulated":true}}}`,
		"sim not simulated": `{"v":1,"kind":"job.done","time":"2026-11-24T13:14:36.12Z","receipt":{"kind":"job","job":"j","tee":{"type":"sim","simulated":false}}}`,
		"release no recip":  `{"v":1,"kind":"release","time":"2026-11-24T13:14:36.12Z","receipt":{"kind":"release","job":"j","tee":{"type":"tdx","simulated":false}}}`,
		"simulated omitted": `{"v":1,"kind":"job.done","time":"2026-11-24T13:14:36.12Z","receipt":{"kind":"job","job":"j","tee":{"type":"tdx"}}}`,
	}
	for name, rec := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseRecord([]byte(rec)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestEventCaps(t *testing.T) {
	base := func() Event { return Event{Kind: KindUse, Time: goldenTime} }
	long := strings.Repeat("x", maxIDLen+1)
	cases := map[string]func(*Event){
		"zero time":        func(e *Event) { e.Time = time.Time{} },
		"local time":       func(e *Event) { e.Time = goldenTime.In(time.FixedZone("X", 3600)) },
		"long kind":        func(e *Event) { e.Kind = Kind(strings.Repeat("a", maxKindLen+1)) },
		"long actor":       func(e *Event) { e.Actor = long },
		"long job":         func(e *Event) { e.Job = long },
		"too many pads":    func(e *Event) { e.Pads = make([]string, maxPads+1) },
		"too many reasons": func(e *Event) { e.Reasons = make([]string, maxReasons+1) },
		"long reason":      func(e *Event) { e.Reasons = []string{strings.Repeat("r", maxReasonLen+1)} },
		"long detail": func(e *Event) {
			e.Details = map[string]string{"k": strings.Repeat("v", maxDetailValLen+1)}
		},
		"long detail key": func(e *Event) {
			e.Details = map[string]string{strings.Repeat("k", maxDetailKeyLen+1): "v"}
		},
		"too many details": func(e *Event) {
			e.Details = map[string]string{}
			for i := range maxDetails + 1 {
				e.Details[strings.Repeat("k", i+1)] = "v"
			}
		},
		"record too large": func(e *Event) {
			for i := range maxPads {
				e.Pads = append(e.Pads, strings.Repeat("p", 200)+string(rune('a'+i%26)))
			}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			ev := base()
			mutate(&ev)
			if _, err := MarshalRecord(&ev); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	oversized := []byte(`{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","reasons":["` + strings.Repeat("a", MaxRecordSize) + `"]}`)
	if _, err := ParseRecord(oversized); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized record: %v", err)
	}
}

func TestAppendNormalisesTime(t *testing.T) {
	l := openTestLog(t, t.TempDir())
	ev := testEvent(0)
	ev.Time = goldenTime.In(time.FixedZone("CET", 3600))
	e, err := l.Append(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Event.Time.Equal(goldenTime) || e.Event.Time.Location() != time.UTC {
		t.Fatalf("time %v, want %v in UTC", e.Event.Time, goldenTime)
	}
	ev.Time = time.Time{}
	e, err = l.Append(t.Context(), ev)
	if err != nil || e.Event.Time.IsZero() {
		t.Fatalf("zero time not filled: %v %v", e.Event.Time, err)
	}
}
