/* plot.h — a small SVG line-chart writer for training curves (loss against
 * step): axes with "nice" tick labels (1, 2, 5 x 10^k), light grid lines, a
 * legend, a title and axis labels. No dependencies; the output is a complete,
 * self-contained SVG 1.1 document that browsers and XML parsers accept.
 *
 * Points whose x or y is NaN or infinite are skipped (a series with gaps,
 * e.g. a validation loss measured every N steps, is drawn through the points
 * it has). A chart with no finite point gets empty axes and a "no data" note.
 * Deliberately not a plotting library: one chart type, fixed layout. */
#ifndef YAN_PLOT_H
#define YAN_PLOT_H

#include "base/base.h"

typedef struct {
    const char *name;   /* legend text (escaped for XML here) */
    const char *color;  /* SVG colour, e.g. "#1f77b4" (trusted: not escaped) */
    const double *x;    /* (n) */
    const double *y;    /* (n) */
    size_t n;
    bool markers;       /* draw a dot at each point (sparse series) */
} yan_plot_series;

typedef struct {
    const char *title;   /* may be NULL */
    const char *xlabel;  /* may be NULL */
    const char *ylabel;  /* may be NULL */
    int width, height;   /* pixels; 0 = 800 x 480 */
} yan_plot_params;

/* Append the chart's SVG to out. Errors: NOMEM (out->oom is then set). */
yan_status yan_plot_svg(const yan_plot_params *p, const yan_plot_series *s, int n_series, yan_buf *out);

/* Tick positions for [lo, hi]: a step of 1, 2 or 5 x 10^k giving about
 * `target` intervals; writes the first tick (>= lo) and the step. lo < hi. */
void yan_plot_ticks(double lo, double hi, int target, double *first, double *step);

#endif /* YAN_PLOT_H */
