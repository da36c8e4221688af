/* plot.c — the SVG line chart of plot.h. One pass over the data for the
 * ranges, then the document is appended to a yan_buf in drawing order:
 * background, grid and tick labels, axes, series, legend, title, labels. */
#include "train/plot.h"

#include <math.h>

/* ----------------------------------------------------------------- helpers */

static void put_escaped(yan_buf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': yan_buf_puts(b, "&amp;"); break;
        case '<': yan_buf_puts(b, "&lt;"); break;
        case '>': yan_buf_puts(b, "&gt;"); break;
        case '"': yan_buf_puts(b, "&quot;"); break;
        case '\'': yan_buf_puts(b, "&apos;"); break;
        default:
            /* control characters are not allowed in XML 1.0 */
            if ((unsigned char)*s >= 0x20 || *s == '\t' || *s == '\n') yan_buf_putc(b, *s);
        }
    }
}

static bool finite_pt(double x, double y) { return isfinite(x) && isfinite(y); }

void yan_plot_ticks(double lo, double hi, int target, double *first, double *step) {
    if (target < 1) target = 1;
    double raw = (hi - lo) / target;
    if (!(raw > 0) || !isfinite(raw)) raw = 1;
    double mag = pow(10.0, floor(log10(raw)));
    double norm = raw / mag;
    double st = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
    *step = st * mag;
    *first = ceil(lo / *step - 1e-9) * *step;
}

/* A tick label without binary-fraction noise: as many decimals as the step needs. */
static void tick_label(char *buf, size_t cap, double v, double step) {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 12) dec = 12;
    if (fabs(v) < step * 1e-6) v = 0; /* no "-0" */
    if (fabs(v) >= 1e7) snprintf(buf, cap, "%.3g", v);
    else snprintf(buf, cap, "%.*f", dec, v);
}

/* Extend [*lo, *hi] outwards to whole ticks; returns the step. */
static double frame(double *lo, double *hi, int target) {
    if (*hi <= *lo) {
        double pad = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;
        *lo -= pad;
        *hi += pad;
    }
    double first, step;
    yan_plot_ticks(*lo, *hi, target, &first, &step);
    double l = floor(*lo / step + 1e-9) * step, h = ceil(*hi / step - 1e-9) * step;
    if (h <= l) h = l + step;
    *lo = l;
    *hi = h;
    return step;
}

/* ------------------------------------------------------------------- chart */

yan_status yan_plot_svg(const yan_plot_params *p, const yan_plot_series *s, int n_series, yan_buf *out) {
    const int W = p && p->width > 0 ? p->width : 800, H = p && p->height > 0 ? p->height : 480;
    const double ml = 72, mr = 24, mt = 44, mb = 56; /* margins */
    const double pw = W - ml - mr, ph = H - mt - mb;

    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    size_t n_pts = 0;
    for (int i = 0; i < n_series; i++)
        for (size_t j = 0; j < s[i].n; j++) {
            double x = s[i].x[j], y = s[i].y[j];
            if (!finite_pt(x, y)) continue;
            n_pts++;
            if (x < xlo) xlo = x;
            if (x > xhi) xhi = x;
            if (y < ylo) ylo = y;
            if (y > yhi) yhi = y;
        }
    if (!n_pts) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
    if (xlo > 0 && xlo <= (xhi - xlo) * 0.05 + 1) xlo = 0; /* steps: start the axis at 0 */
    double xstep = frame(&xlo, &xhi, 8), ystep = frame(&ylo, &yhi, 6);
#define PX(x) (ml + ((x) - xlo) / (xhi - xlo) * pw)
#define PY(y) (mt + ph - ((y) - ylo) / (yhi - ylo) * ph)

    yan_buf_printf(out,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
                   "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
                   "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
                   W, H, W, H, W, H);

    /* grid and tick labels */
    char lab[64];
    yan_buf_puts(out, "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n");
    for (int k = 0;; k++) {
        double v = xlo + k * xstep;
        if (v > xhi + xstep * 1e-6) break;
        yan_buf_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(v), mt, PX(v), mt + ph);
    }
    for (int k = 0;; k++) {
        double v = ylo + k * ystep;
        if (v > yhi + ystep * 1e-6) break;
        yan_buf_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", ml, PY(v), ml + pw, PY(v));
    }
    yan_buf_puts(out, "</g>\n<g fill=\"#333\">\n");
    for (int k = 0;; k++) {
        double v = xlo + k * xstep;
        if (v > xhi + xstep * 1e-6) break;
        tick_label(lab, sizeof lab, v, xstep);
        yan_buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", PX(v), mt + ph + 18,
                       lab);
    }
    for (int k = 0;; k++) {
        double v = ylo + k * ystep;
        if (v > yhi + ystep * 1e-6) break;
        tick_label(lab, sizeof lab, v, ystep);
        yan_buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", ml - 8, PY(v) + 4, lab);
    }
    yan_buf_puts(out, "</g>\n");
    yan_buf_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
                   ml, mt, pw, ph);

    /* series */
    for (int i = 0; i < n_series; i++) {
        const char *col = s[i].color ? s[i].color : "black";
        size_t n_fin = 0;
        for (size_t j = 0; j < s[i].n; j++) n_fin += finite_pt(s[i].x[j], s[i].y[j]);
        if (n_fin >= 2) {
            yan_buf_printf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
            for (size_t j = 0; j < s[i].n; j++)
                if (finite_pt(s[i].x[j], s[i].y[j]))
                    yan_buf_printf(out, "%.1f,%.1f ", PX(s[i].x[j]), PY(s[i].y[j]));
            yan_buf_puts(out, "\"/>\n");
        }
        if (s[i].markers || n_fin == 1) {
            yan_buf_printf(out, "<g fill=\"%s\">\n", col);
            for (size_t j = 0; j < s[i].n; j++)
                if (finite_pt(s[i].x[j], s[i].y[j]))
                    yan_buf_printf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>\n", PX(s[i].x[j]), PY(s[i].y[j]));
            yan_buf_puts(out, "</g>\n");
        }
    }
    if (!n_pts)
        yan_buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n",
                       ml + pw / 2, mt + ph / 2);

    /* legend: top right inside the plot */
    if (n_series > 0) {
        const double lw = 150, lh = 8 + 18.0 * n_series, lx = ml + pw - lw - 8, ly = mt + 8;
        yan_buf_printf(out,
                       "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" "
                       "fill-opacity=\"0.85\" stroke=\"#999\"/>\n",
                       lx, ly, lw, lh);
        for (int i = 0; i < n_series; i++) {
            double yy = ly + 16 + 18.0 * i;
            const char *col = s[i].color ? s[i].color : "black";
            yan_buf_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                           lx + 8, yy - 4, lx + 32, yy - 4, col);
            yan_buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\">", lx + 40, yy);
            put_escaped(out, s[i].name ? s[i].name : "");
            yan_buf_puts(out, "</text>\n");
        }
    }

    /* title and axis labels */
    if (p && p->title) {
        yan_buf_printf(out, "<text x=\"%.1f\" y=\"26\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">",
                       W / 2.0);
        put_escaped(out, p->title);
        yan_buf_puts(out, "</text>\n");
    }
    if (p && p->xlabel) {
        yan_buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", ml + pw / 2, H - 12.0);
        put_escaped(out, p->xlabel);
        yan_buf_puts(out, "</text>\n");
    }
    if (p && p->ylabel) {
        yan_buf_printf(out, "<text x=\"16\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.1f)\">",
                       mt + ph / 2, mt + ph / 2);
        put_escaped(out, p->ylabel);
        yan_buf_puts(out, "</text>\n");
    }
    yan_buf_puts(out, "</svg>\n");
#undef PX
#undef PY
    return out->oom ? yan_fail(YAN_ERR_NOMEM, "plot: out of memory") : YAN_OK;
}
