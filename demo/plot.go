package demo

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
	"golang.org/x/mod/sumdb/tlog"
)

// writePlot draws the training curves as a PNG: the hinge objective (top) and the training
// accuracy (bottom) after each epoch, of the training inside Styx as its program reported it
// (red, thin) and of the same training centrally in plain Go (blue, wide), with both models' final test
// accuracy in the title.
func writePlot(path string, c Curve, joint, central float64) error {
	const w, h = 760, 560
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	label(img, 10, 18, "per epoch: Styx (red, as svmtrain logged it) vs central plain Go (blue, wide)")
	label(img, 10, 34, fmt.Sprintf("final test accuracy: Styx joint %.4f, central plain Go %.4f", joint, central))
	objective := func(p EpochFit) float64 { return p.Objective }
	accuracy := func(p EpochFit) float64 { return p.Accuracy }
	panel(img, image.Rect(80, 50, w-20, 280), "hinge objective", c, objective)
	panel(img, image.Rect(80, 310, w-20, h-50), "training accuracy", c, accuracy)
	label(img, w/2-20, h-12, "epoch")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// panel draws both curves of one measure in r, with a y axis fitted to their range.
func panel(img *image.RGBA, r image.Rectangle, name string, c Curve, y func(EpochFit) float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	n := max(len(c.Styx), len(c.Central))
	for _, pts := range [][]EpochFit{c.Styx, c.Central} {
		for _, p := range pts {
			lo, hi = min(lo, y(p)), max(hi, y(p))
		}
	}
	if n == 0 || !(hi > lo) {
		lo, hi = lo-0.5, hi+0.5
	}
	pad := (hi - lo) / 20
	lo, hi = lo-pad, hi+pad
	px := func(e int) int { return r.Min.X + (e-1)*r.Dx()/max(n-1, 1) }
	py := func(v float64) int { return r.Min.Y + int((hi-v)/(hi-lo)*float64(r.Dy())) }
	grey, black := color.RGBA{200, 200, 200, 255}, color.Black
	for i := 0; i <= 4; i++ {
		v := lo + float64(i)*(hi-lo)/4
		line(img, r.Min.X, py(v), r.Max.X, py(v), grey)
		label(img, r.Min.X-70, py(v)+4, fmt.Sprintf("%.4f", v))
	}
	line(img, r.Min.X, r.Min.Y, r.Min.X, r.Max.Y, black)
	line(img, r.Min.X, r.Max.Y, r.Max.X, r.Max.Y, black)
	for e := 1; e <= n; e += max(n/8, 1) {
		label(img, px(e)-4, r.Max.Y+16, fmt.Sprint(e))
	}
	label(img, r.Min.X+8, r.Min.Y+14, name)
	blue, red := color.RGBA{30, 90, 200, 255}, color.RGBA{200, 40, 40, 255}
	// Central wide and first, Styx thin on top: where they coincide, both stay visible.
	for i := 1; i < len(c.Central); i++ {
		a, b := c.Central[i-1], c.Central[i]
		thick(img, px(a.Epoch), py(y(a)), px(b.Epoch), py(y(b)), blue)
	}
	for i := 1; i < len(c.Styx); i++ {
		a, b := c.Styx[i-1], c.Styx[i]
		line(img, px(a.Epoch), py(y(a)), px(b.Epoch), py(y(b)), red)
	}
}

func label(img *image.RGBA, x, y int, s string) {
	d := &font.Drawer{Dst: img, Src: image.Black, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// line draws a straight line (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	err := dx + dy
	for {
		img.Set(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			x0 += sx
		}
		if e2 <= dx {
			err += dx
			y0 += sy
		}
	}
}

func thick(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	for d := -1; d <= 1; d++ {
		line(img, x0, y0+d, x1, y1+d, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// proofOf converts the API's consistency proof to tlog's form.
func proofOf(p [][]byte) tlog.TreeProof {
	out := make(tlog.TreeProof, 0, len(p))
	for _, h := range p {
		var x tlog.Hash
		copy(x[:], h)
		out = append(out, x)
	}
	return out
}
