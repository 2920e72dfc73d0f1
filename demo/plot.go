package demo

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
	"golang.org/x/mod/sumdb/tlog"
)

// writePlot draws test accuracy against epochs (the central reference run of the same training
// code) with the joint Styx model's accuracy as a horizontal line, as a PNG.
func writePlot(path string, curve []float64, joint float64) error {
	const w, h, left, right, top, bottom = 720, 420, 70, 20, 40, 50
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	lo, hi := 0.80, 1.0
	for _, a := range curve {
		lo = min(lo, a-0.01)
	}
	px := func(i int) int { return left + i*(w-left-right)/max(len(curve)-1, 1) }
	py := func(a float64) int { return top + int((hi-a)/(hi-lo)*float64(h-top-bottom)) }
	grey, black := color.RGBA{200, 200, 200, 255}, color.Black
	for a := lo; a <= hi+1e-9; a += (hi - lo) / 4 {
		line(img, left, py(a), w-right, py(a), grey)
		label(img, 8, py(a)+4, fmt.Sprintf("%.3f", a))
	}
	line(img, left, top, left, h-bottom, black)
	line(img, left, h-bottom, w-right, h-bottom, black)
	for i := 0; i < len(curve); i += max(len(curve)/8, 1) {
		label(img, px(i)-4, h-bottom+18, fmt.Sprint(i+1))
	}
	blue, red := color.RGBA{30, 90, 200, 255}, color.RGBA{200, 40, 40, 255}
	for i := 1; i < len(curve); i++ {
		thick(img, px(i-1), py(curve[i-1]), px(i), py(curve[i]), blue)
	}
	thick(img, left, py(joint), w-right, py(joint), red)
	label(img, left, 20, "test accuracy by epoch: central plain-Go run (blue) vs Styx joint model (red)")
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
