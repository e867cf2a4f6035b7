package main

import (
	"fmt"
	"math"
	"strings"
)

// The plot: three log-log panels against the number of secrets, written
// as SVG by hand (no plotting dependency).

type point struct{ x, y float64 }

type series struct {
	name   string
	color  string
	dashed bool
	points []point
}

type panel struct {
	title, note, unit string
	series            []series
}

var toolColors = map[string]string{
	"secrets-sidecar": "#1f5fbf",
	"consul-template": "#d9730d",
	"floor":           "#6b6b6b",
}

const (
	panelW, panelH           = 380, 330
	marginL, marginR         = 62, 26
	marginT, marginB         = 52, 46
	plotXMin, plotXMax       = 10.0, 10000.0
	legendH                  = 34
	fontFamily               = "Helvetica, Arial, sans-serif"
	gridColor, axisTextColor = "#e3e3e3", "#333"
)

// plot draws `once` wall time, `once` peak RSS and daemon RSS against N.
func (r *results) plot() string {
	p := r.primary()
	onceSeries := func(f func(onceMeasure) float64) []series {
		var out []series
		for _, md := range []string{"disk", "tmpfs"} {
			for _, t := range []struct{ name, label string }{
				{"secrets-sidecar", sidecarLabel(p)}, {"consul-template", "consul-template"}, {"floor", floorLabel(p)},
			} {
				se := series{name: t.name + " (" + md + ")", color: toolColors[t.name], dashed: md == "tmpfs"}
				for _, row := range r.once {
					if row.medium != md {
						continue
					}
					if v := r.med(row, t.label, f); !math.IsNaN(v) && v > 0 {
						se.points = append(se.points, point{float64(row.n), v})
					}
				}
				if len(se.points) > 0 {
					out = append(out, se)
				}
			}
		}
		return out
	}
	var daemon []series
	for i, t := range r.tools {
		for _, anon := range []bool{false, true} {
			se := series{name: t.name, color: toolColors[t.name], dashed: anon}
			for _, m := range r.sweep[i] {
				v := m.mem.rss
				if anon {
					v = m.mem.anon
				}
				se.points = append(se.points, point{float64(m.n), mib(v)})
			}
			if len(se.points) > 0 {
				daemon = append(daemon, se)
			}
		}
	}
	panels := []panel{
		{title: "once: wall time", note: fmt.Sprintf("solid disk, dashed tmpfs; sidecar and floor at %d", p), unit: "s", series: onceSeries(wallOf)},
		{title: "once: peak RSS (VmHWM)", note: "solid disk, dashed tmpfs", unit: "MiB", series: onceSeries(hwmOf)},
		{title: "daemon: RSS", note: "solid RSS, dashed RssAnon; median over the window", unit: "MiB", series: daemon},
	}
	w, h := panelW*len(panels), panelH+legendH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="%s" font-size="11">`+"\n", w, h, w, h, fontFamily)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", w, h)
	for i, pn := range panels {
		drawPanel(&b, float64(i*panelW), pn)
	}
	// Legend: one entry per tool.
	y := float64(panelH + legendH/2)
	x := float64(marginL)
	for _, t := range []struct{ name, text string }{
		{"secrets-sidecar", "secrets-sidecar"}, {"consul-template", "consul-template"}, {"floor", "floor (bare client; no daemon)"},
	} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"/>`+"\n", x, y, x+26, y, toolColors[t.name])
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x+13, y, toolColors[t.name])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle" fill="%s">%s</text>`+"\n", x+32, y, axisTextColor, xmlEscape(t.text))
		x += 32 + 7*float64(len(t.text)) + 30
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle" fill="#777">x: secrets (log); y: log; medians; scripts/bench</text>`+"\n", x+10, y)
	b.WriteString("</svg>\n")
	return b.String()
}

func drawPanel(b *strings.Builder, x0 float64, pn panel) {
	left, top := x0+marginL, float64(marginT)
	pw, ph := float64(panelW-marginL-marginR), float64(panelH-marginT-marginB)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, se := range pn.series {
		for _, p := range se.points {
			lo, hi = math.Min(lo, p.y), math.Max(hi, p.y)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	// y range: whole decades around the data, at least one.
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi <= ylo {
		yhi = ylo + 1
	}
	sx := func(v float64) float64 {
		return left + (math.Log10(v)-math.Log10(plotXMin))/(math.Log10(plotXMax)-math.Log10(plotXMin))*pw
	}
	sy := func(v float64) float64 { return top + ph - (math.Log10(v)-ylo)/(yhi-ylo)*ph }

	fmt.Fprintf(b, `<text x="%.1f" y="20" font-size="14" font-weight="bold" fill="%s">%s</text>`+"\n", left, axisTextColor, xmlEscape(pn.title))
	fmt.Fprintf(b, `<text x="%.1f" y="36" fill="#666">%s</text>`+"\n", left, xmlEscape(pn.note))
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#999"/>`+"\n", left, top, pw, ph)
	// x: decades.
	for v := plotXMin; v <= plotXMax*1.0001; v *= 10 {
		x := sx(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x, top, x, top+ph, gridColor)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">%s</text>`+"\n", x, top+ph+15, axisTextColor, thousands(int(v)))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">secrets</text>`+"\n", left+pw/2, top+ph+34, axisTextColor)
	// y: 1, 2, 5 per decade; grid lines at the decades.
	decades := yhi - ylo
	for e := ylo; e <= yhi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) > yhi+1e-9 {
				break
			}
			y := sy(v)
			if m == 1 {
				fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", left, y, left+pw, y, gridColor)
			} else if decades > 2 {
				continue
			}
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", left-4, y, left, y)
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle" fill="%s">%s</text>`+"\n", left-6, y, axisTextColor, tickLabel(v))
		}
	}
	fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle" fill="%s">%s</text>`+"\n", x0+14, top+ph/2, axisTextColor, xmlEscape(pn.unit))
	for _, se := range pn.series {
		var pts []string
		for _, p := range se.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(p.x), sy(p.y)))
		}
		dash := ""
		if se.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s><title>%s</title></polyline>`+"\n",
			strings.Join(pts, " "), se.color, dash, xmlEscape(se.name))
		for _, p := range se.points {
			fill := se.color
			if se.dashed {
				fill = "#ffffff"
			}
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s" stroke="%s" stroke-width="1.5"><title>%s, N=%s: %s %s</title></circle>`+"\n",
				sx(p.x), sy(p.y), fill, se.color, xmlEscape(se.name), thousands(int(p.x)), tickLabel(p.y), xmlEscape(pn.unit))
		}
	}
}

// tickLabel writes v without trailing zeros: 0.01, 2, 500.
func tickLabel(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
	}
	s := fmt.Sprintf("%.4f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
