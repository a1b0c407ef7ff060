/* The compiled loops of tinygrad_lite/kernels.py: each does in one pass over memory what numpy does in a
 * chain of passes. Written once for a floating type `real` (float or double: kernels.py compiles this file
 * once for each), with plain IEEE arithmetic in the order numpy's formulas use, so that Adam's update and
 * GELU's derivative come out the same to the bit. `#pragma omp simd` lets the compiler sum a row in vector
 * lanes (the layer norm's statistics then differ from numpy's pairwise sums by round-off only) and call the
 * C library's vector tanh (glibc's libmvec) where it has one. Arrays are C-contiguous; n counts elements.
 * kernels.py includes this file twice, with `real` and NAME(f) (f_f32, f_f64) defined. */

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(VECTOR_MATH) && !defined(VECTOR_MATH_DECLARED)
#define VECTOR_MATH_DECLARED
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
double tanh(double);
#endif

#define TANH(x) (sizeof(real) == sizeof(float) ? (real)tanhf((float)(x)) : (real)tanh((double)(x)))
#define SQRT(x) (sizeof(real) == sizeof(float) ? (real)sqrtf((float)(x)) : (real)sqrt((double)(x)))

/* Adam(W) over many parameters in one call: row i of `table` (ADAM_FIELDS numbers, addresses as integers) is
 * parameter i's p, g, m, v and size n; row i of `scalars` (ADAM_SCALARS) its decay, step size, 1 - b1, b2, 1 - b2,
 * sqrt(1 - b2^t) and eps. Each element, in place and in PyTorch's order of operations:
 * p *= decay; m += (g - m)(1 - b1); v = b2 v + (1 - b2) g^2; p -= m / (sqrt(v) / sqrt(1 - b2^t) + eps) step_size.
 * The parameters' elements, end to end, are split among the team: one call instead of one per parameter (a
 * GPT has fifty, most of them small), and both cores on the large ones. */
#ifndef ADAM_FIELDS_DECLARED
#define ADAM_FIELDS_DECLARED
enum { ADAM_P, ADAM_G, ADAM_M, ADAM_V, ADAM_N, ADAM_FIELDS };
enum { ADAM_DECAY, ADAM_STEP_SIZE, ADAM_ONE_MINUS_BETA1, ADAM_BETA2, ADAM_ONE_MINUS_BETA2, ADAM_BIAS_CORRECTION2_SQRT,
       ADAM_EPS, ADAM_SCALARS };
#endif

static void NAME(adam_range)(real *restrict p, const real *restrict g, real *restrict m, real *restrict v, ptrdiff_t n,
                             const double *s) {
    const real decay = (real)s[ADAM_DECAY], step_size = (real)s[ADAM_STEP_SIZE];
    const real one_minus_beta1 = (real)s[ADAM_ONE_MINUS_BETA1], beta2 = (real)s[ADAM_BETA2];
    const real one_minus_beta2 = (real)s[ADAM_ONE_MINUS_BETA2];
    const real bias_correction2_sqrt = (real)s[ADAM_BIAS_CORRECTION2_SQRT], eps = (real)s[ADAM_EPS];
    #pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) {
        const real gi = g[i];
        const real mi = m[i] + (gi - m[i]) * one_minus_beta1;
        const real vi = v[i] * beta2 + gi * gi * one_minus_beta2;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - mi / (SQRT(vi) / bias_correction2_sqrt + eps) * step_size;
    }
}

typedef struct {
    const ptrdiff_t *table;
    const double *scalars;
    ptrdiff_t count, total;
} NAME(adam_job);

static void NAME(adam_part)(void *job, ptrdiff_t part, ptrdiff_t parts) {
    const NAME(adam_job) *j = job;
    ptrdiff_t lo, hi, start = 0;
    team_bounds(j->total, part, parts, 64, &lo, &hi);
    for (ptrdiff_t i = 0; i < j->count && start < hi; i++) {
        const ptrdiff_t *row = j->table + i * ADAM_FIELDS, n = row[ADAM_N];
        const ptrdiff_t from = (lo > start ? lo : start) - start, to = (hi < start + n ? hi : start + n) - start;
        if (from < to)
            NAME(adam_range)((real *)row[ADAM_P] + from, (const real *)row[ADAM_G] + from, (real *)row[ADAM_M] + from,
                             (real *)row[ADAM_V] + from, to - from, j->scalars + i * ADAM_SCALARS);
        start += n;
    }
}

void NAME(adam)(const ptrdiff_t *table, const double *scalars, ptrdiff_t count, ptrdiff_t threads) {
    NAME(adam_job) job = {table, scalars, count, 0};
    for (ptrdiff_t i = 0; i < count; i++) job.total += table[i * ADAM_FIELDS + ADAM_N];
    team_run(NAME(adam_part), &job, team_parts(job.total, TEAM_MIN_NUMBERS, threads), threads);
}

/* Layer norm over the rows of x (rows, features), split among the team in parts of whole rows. */
typedef struct {
    const real *x, *weight, *bias, *g;
    real *mean, *rstd, *out;
    real *partials;  /* backward: (parts, 2, features), each part's column sums for dweight and dbias */
    double eps;
    ptrdiff_t rows, features;
} NAME(layer_norm_job);

/* Rows of at least this many numbers in a part: a handoff costs what a few thousand numbers of these loops do. */
static ptrdiff_t NAME(layer_norm_parts)(ptrdiff_t rows, ptrdiff_t features, ptrdiff_t threads) {
    return team_parts(rows, 1 + TEAM_MIN_NUMBERS / (features + 1), threads);
}

/* mean, rstd = 1 / sqrt(var + eps) per row, out = xhat weight + bias with xhat = (x - mean) rstd. xhat is not
 * kept: (x - mean) rstd gives it again to the bit. */
static void NAME(layer_norm_part)(void *job, ptrdiff_t part, ptrdiff_t parts) {
    const NAME(layer_norm_job) *j = job;
    const ptrdiff_t features = j->features;
    const real *restrict weight = j->weight, *restrict bias = j->bias;
    ptrdiff_t lo, hi;
    team_bounds(j->rows, part, parts, 1, &lo, &hi);
    for (ptrdiff_t r = lo; r < hi; r++) {
        const real *restrict xr = j->x + r * features;
        real *restrict outr = j->out + r * features;
        real total = 0, squares = 0;
        #pragma omp simd reduction(+:total)
        for (ptrdiff_t c = 0; c < features; c++) total += xr[c];
        const real m = total / (real)features;
        #pragma omp simd reduction(+:squares)
        for (ptrdiff_t c = 0; c < features; c++) {
            const real centred = xr[c] - m;
            squares += centred * centred;
        }
        const real inverse = (real)1 / SQRT(squares / (real)features + (real)j->eps);
        j->mean[r] = m;
        j->rstd[r] = inverse;
        #pragma omp simd
        for (ptrdiff_t c = 0; c < features; c++) outr[c] = (xr[c] - m) * inverse * weight[c] + bias[c];
    }
}

void NAME(layer_norm)(const real *x, const real *weight, const real *bias, double eps, real *mean, real *rstd,
                      real *out, ptrdiff_t rows, ptrdiff_t features, ptrdiff_t threads) {
    NAME(layer_norm_job) job = {x, weight, bias, NULL, mean, rstd, out, NULL, eps, rows, features};
    team_run(NAME(layer_norm_part), &job, NAME(layer_norm_parts)(rows, features, threads), threads);
}

/* dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) per row, with xhat = (x - mean) rstd (the forward's,
 * to the bit) and dxhat = g weight (the job's out is gx); the part's partials get the column sums of g xhat and
 * of g. */
static void NAME(layer_norm_backward_part)(void *job, ptrdiff_t part, ptrdiff_t parts) {
    const NAME(layer_norm_job) *j = job;
    const ptrdiff_t features = j->features;
    const real *restrict weight = j->weight;
    real *restrict dweight = j->partials + 2 * part * features, *restrict dbias = dweight + features;
    ptrdiff_t lo, hi;
    team_bounds(j->rows, part, parts, 1, &lo, &hi);
    for (ptrdiff_t c = 0; c < 2 * features; c++) dweight[c] = 0;
    for (ptrdiff_t r = lo; r < hi; r++) {
        const real *restrict gr = j->g + r * features, *restrict xr = j->x + r * features;
        const real m = j->mean[r], inverse = j->rstd[r];
        real *restrict dr = j->out + r * features;
        real mean_g = 0, mean_gx = 0;
        #pragma omp simd reduction(+:mean_g, mean_gx)
        for (ptrdiff_t c = 0; c < features; c++) {
            const real h = (xr[c] - m) * inverse;
            const real gh = gr[c] * weight[c];
            mean_g += gh;
            mean_gx += gh * h;
            dweight[c] += gr[c] * h;
            dbias[c] += gr[c];
        }
        mean_g /= (real)features;
        mean_gx /= (real)features;
        #pragma omp simd
        for (ptrdiff_t c = 0; c < features; c++)
            dr[c] = (gr[c] * weight[c] - mean_g - (xr[c] - m) * inverse * mean_gx) * inverse;
    }
}

/* gx as above; dweight = the column sums of g xhat and dbias those of g, the parts' sums added in order.
 * partials: room for (threads, 2, features). */
void NAME(layer_norm_backward)(const real *g, const real *x, const real *mean, const real *rstd, const real *weight,
                               real *gx, real *dweight, real *dbias, real *partials, ptrdiff_t rows,
                               ptrdiff_t features, ptrdiff_t threads) {
    NAME(layer_norm_job) job = {x, weight, NULL, g, (real *)mean, (real *)rstd, gx, partials, 0.0, rows, features};
    const ptrdiff_t parts = NAME(layer_norm_parts)(rows, features, threads);
    team_run(NAME(layer_norm_backward_part), &job, parts, threads);
    for (ptrdiff_t c = 0; c < features; c++) {
        real w = 0, b = 0;
        for (ptrdiff_t p = 0; p < parts; p++) {
            w += partials[2 * p * features + c];
            b += partials[(2 * p + 1) * features + c];
        }
        dweight[c] = w;
        dbias[c] = b;
    }
}

#define GELU_C 0.7978845608028654 /* sqrt(2 / pi) */

/* GELU's tanh form: out = 0.5 x (1 + t), t = tanh(sqrt(2/pi) x (1 + 0.044715 x^2)); with g given (not NULL),
 * its derivative times g instead: out = g (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 x^2)), t
 * computed again as the forward computed it (to the bit): keeping t instead would hold one more number per
 * hidden unit from forward to backward, at the top of a step's memory, to save one tanh. */
typedef struct {
    const real *x, *g;
    real *out;
    ptrdiff_t n;
} NAME(gelu_job);

static void NAME(gelu_part)(void *job, ptrdiff_t part, ptrdiff_t parts) {
    const NAME(gelu_job) *j = job;
    const real a = (real)0.044715, k = (real)(3 * 0.044715 * GELU_C), c = (real)GELU_C;
    const real *restrict x = j->x, *restrict g = j->g;
    real *restrict out = j->out;
    ptrdiff_t lo, hi;
    team_bounds(j->n, part, parts, 64, &lo, &hi);
    if (g == NULL) {
        #pragma omp simd
        for (ptrdiff_t i = lo; i < hi; i++) {
            const real xi = x[i];
            const real ti = TANH((xi * xi * a + 1) * xi * c);
            out[i] = (ti + 1) * xi * (real)0.5;
        }
    } else {
        #pragma omp simd
        for (ptrdiff_t i = lo; i < hi; i++) {
            const real xi = x[i];
            const real ti = TANH((xi * xi * a + 1) * xi * c);
            const real slope = xi * xi * k + c;
            out[i] = ((1 - ti * ti) * xi * slope + ti + 1) * (real)0.5 * g[i];
        }
    }
}

void NAME(gelu_tanh)(const real *x, real *out, ptrdiff_t n, ptrdiff_t threads) {
    NAME(gelu_job) job = {x, NULL, out, n};
    team_run(NAME(gelu_part), &job, team_parts(n, TEAM_MIN_NUMBERS, threads), threads);
}

void NAME(gelu_tanh_backward)(const real *x, const real *g, real *out, ptrdiff_t n, ptrdiff_t threads) {
    NAME(gelu_job) job = {x, g, out, n};
    team_run(NAME(gelu_part), &job, team_parts(n, TEAM_MIN_NUMBERS, threads), threads);
}

#if defined(VECTOR_MATH) && !defined(VECTOR_EXP_DECLARED)
#define VECTOR_EXP_DECLARED
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
double exp(double);
#endif

#define EXP(x) (sizeof(real) == sizeof(float) ? (real)expf((float)(x)) : (real)exp((double)(x)))

/* One row's softmax in place (see softmax_rows), for it and for attention's rows. */
static void NAME(softmax_row)(real *restrict row, ptrdiff_t cols) {
    real peak = -INFINITY, total = 0;
    #pragma omp simd reduction(max:peak)
    for (ptrdiff_t j = 0; j < cols; j++) peak = row[j] > peak ? row[j] : peak;
    if (!isfinite(peak)) peak = 0;
    #pragma omp simd reduction(+:total)
    for (ptrdiff_t j = 0; j < cols; j++) {
        const real e = EXP(row[j] - peak);
        row[j] = e;
        total += e;
    }
    if (total == 0) total = 1;
    #pragma omp simd
    for (ptrdiff_t j = 0; j < cols; j++) row[j] /= total;
}

/* Softmax over each row of x, in place: x - max, exp, / sum. The rows are x[a*s0 + b*s1 + r*s2 + (0..cols)]
 * for a < outer, b < middle, r < rows (strides in elements: a block of a larger array). A row whose maximum
 * is not finite is shifted by 0, and one that sums to 0 (all -inf: it attends to nothing) stays all zeros. */
void NAME(softmax_rows)(real *restrict x, ptrdiff_t outer, ptrdiff_t middle, ptrdiff_t rows, ptrdiff_t cols,
                        ptrdiff_t s0, ptrdiff_t s1, ptrdiff_t s2) {
    for (ptrdiff_t a = 0; a < outer; a++)
        for (ptrdiff_t b = 0; b < middle; b++)
            for (ptrdiff_t r = 0; r < rows; r++) {
                NAME(softmax_row)(x + a * s0 + b * s1 + r * s2, cols);
            }
}

/* Max pooling of channels-last arrays (the channels' stride is 1), for windows that lie inside the input (no
 * padding). geometry: n c h w (the input), ho wo (the output), kh kw (the kernel), sh sw (its stride), dh dw
 * (its dilation), then the element strides of x (4), of best and which (4, the same layout) and of g (4).
 * The window of output (y, v) takes the input at rows y sh + i dh and columns v sw + j dw. The loops run
 * along the channels, POOL_LANES at a time, without branches: a random maximum would mispredict one
 * branch in two. */
#ifndef POOL_GEOMETRY_DECLARED
#define POOL_GEOMETRY_DECLARED
enum { P_N, P_C, P_H, P_W, P_HO, P_WO, P_KH, P_KW, P_SH, P_SW, P_DH, P_DW, P_XS, P_OS = P_XS + 4, P_GS = P_OS + 4,
       P_LENGTH = P_GS + 4 };
#define POOL_LANES 64
#endif

/* best = each window's maximum, which = the offset k = i kw + j of its first maximum (a strictly larger value
 * takes over, visiting k in order); a NaN wins over everything, the last NaN of a window last. */
void NAME(max_pool2d)(const real *restrict x, real *restrict best, unsigned char *restrict which,
                      const ptrdiff_t *restrict geometry) {
    ptrdiff_t p[P_LENGTH];  /* a local copy: stores through `which` (a char may alias anything) do not reload it */
    for (int i = 0; i < P_LENGTH; i++) p[i] = geometry[i];
    const ptrdiff_t *xs = p + P_XS, *os = p + P_OS;
    real top[POOL_LANES];
    int won[POOL_LANES], nan_k[POOL_LANES];
    for (ptrdiff_t b = 0; b < p[P_N]; b++)
        for (ptrdiff_t y = 0; y < p[P_HO]; y++)
            for (ptrdiff_t v = 0; v < p[P_WO]; v++)
                for (ptrdiff_t c0 = 0; c0 < p[P_C]; c0 += POOL_LANES) {
                    const ptrdiff_t count = p[P_C] - c0 < POOL_LANES ? p[P_C] - c0 : POOL_LANES;
                    const real *window = x + b * xs[0] + c0 + y * p[P_SH] * xs[2] + v * p[P_SW] * xs[3];
                    for (ptrdiff_t l = 0; l < count; l++) {
                        top[l] = -INFINITY;
                        won[l] = 0;
                        nan_k[l] = -1;
                    }
                    for (int i = 0; i < p[P_KH]; i++)
                        for (int j = 0; j < p[P_KW]; j++) {
                            const real *src = window + i * p[P_DH] * xs[2] + j * p[P_DW] * xs[3];
                            const int k = (int)(i * p[P_KW] + j);
                            #pragma omp simd
                            for (ptrdiff_t l = 0; l < count; l++) {
                                const real value = src[l];
                                const int taken = value > top[l];
                                top[l] = taken ? value : top[l];
                                won[l] = taken ? k : won[l];
                                nan_k[l] = value != value ? k : nan_k[l];
                            }
                        }
                    const ptrdiff_t o = b * os[0] + c0 + y * os[2] + v * os[3];
                    for (ptrdiff_t l = 0; l < count; l++) {
                        best[o + l] = nan_k[l] >= 0 ? (real)NAN : top[l];
                        which[o + l] = (unsigned char)(nan_k[l] >= 0 ? nan_k[l] : won[l]);
                    }
                }
}

/* gx (zeros) += g at the input each window's maximum came from: offset by offset (k ascending, the order
 * numpy's formula adds in where windows overlap), each channel adding its g or 0. */
void NAME(max_pool2d_backward)(const real *restrict g, const unsigned char *restrict which, real *restrict gx,
                               const ptrdiff_t *restrict geometry) {
    ptrdiff_t p[P_LENGTH];
    for (int i = 0; i < P_LENGTH; i++) p[i] = geometry[i];
    const ptrdiff_t *xs = p + P_XS, *os = p + P_OS, *gs = p + P_GS;
    for (int i = 0; i < p[P_KH]; i++)
        for (int j = 0; j < p[P_KW]; j++) {
            const unsigned char k = (unsigned char)(i * p[P_KW] + j);
            for (ptrdiff_t b = 0; b < p[P_N]; b++)
                for (ptrdiff_t y = 0; y < p[P_HO]; y++)
                    for (ptrdiff_t v = 0; v < p[P_WO]; v++) {
                        const unsigned char *picked = which + b * os[0] + y * os[2] + v * os[3];
                        const real *up = g + b * gs[0] + y * gs[2] + v * gs[3];
                        real *dst = gx + b * xs[0] + (y * p[P_SH] + i * p[P_DH]) * xs[2] +
                                    (v * p[P_SW] + j * p[P_DW]) * xs[3];
                        #pragma omp simd
                        for (ptrdiff_t c = 0; c < p[P_C]; c++) dst[c] += picked[c] == k ? up[c] : (real)0;
                    }
        }
}

/* Inverted dropout: out[i] = x[i] m(i), or m(i) itself (the mask) where x is NULL, with m(i) = 0 where the top
 * 24 bits of hash(i) fall below threshold (p 2^24, rounded up), else scale (1 / (1 - p)). The hash is
 * SplitMix64's output function on its Weyl sequence seed + (i + 1) * golden: SplitMix64's own stream, read by
 * index, which numpy's formula can do too, which any split among the team gives alike, and which backward
 * reads again instead of keeping the mask. x m(i) rounds as numpy's x * mask does. */
typedef struct {
    const real *x;
    real *out;
    ptrdiff_t n;
    uint64_t seed, threshold;
    real scale;
} NAME(dropout_job);

static void NAME(dropout_part)(void *job, ptrdiff_t part, ptrdiff_t parts) {
    const NAME(dropout_job) *j = job;
    const uint64_t seed = j->seed, threshold = j->threshold;
    const real scale = j->scale, *restrict x = j->x;
    real *restrict out = j->out;
    ptrdiff_t lo, hi;
    team_bounds(j->n, part, parts, 64, &lo, &hi);
    #pragma omp simd
    for (ptrdiff_t i = lo; i < hi; i++) {
        uint64_t z = seed + ((uint64_t)i + 1) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const real m = (z >> 40) >= threshold ? scale : (real)0;
        out[i] = x == NULL ? m : x[i] * m;
    }
}

void NAME(dropout)(const real *x, real *out, ptrdiff_t n, uint64_t seed, uint64_t threshold, double scale,
                   ptrdiff_t threads) {
    NAME(dropout_job) job = {x, out, n, seed, threshold, (real)scale};
    team_run(NAME(dropout_part), &job, team_parts(n, TEAM_MIN_NUMBERS, threads), threads);
}

/* Batch norm works on the (rows, channels) matrix of its input with the channels last. Its per-channel sums
 * run down the columns in double (a channel has N H W numbers: tens of thousands in float would lose digits),
 * in vector lanes across the channels; a part of the rows adds into its own `sums`, and kernels.py adds the
 * parts. The input is kept from forward to backward and centred again on the way, not stored centred. */

/* sums[0][j] += Σ_r x[r, j]; with mean given (not NULL), sums[0][j] += Σ_r (x[r, j] - mean[j])^2 instead. */
void NAME(batch_norm_sums)(const real *restrict x, const real *restrict mean, double *restrict sums, ptrdiff_t rows,
                           ptrdiff_t channels) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const real *xr = x + r * channels;
        if (mean == NULL) {
            #pragma omp simd
            for (ptrdiff_t j = 0; j < channels; j++) sums[j] += (double)xr[j];
        } else {
            #pragma omp simd
            for (ptrdiff_t j = 0; j < channels; j++) {
                const real centred = xr[j] - mean[j];
                sums[j] += (double)(centred * centred);
            }
        }
    }
}

/* out = (x - mean) scale + shift, per channel j of each row. */
void NAME(batch_norm)(const real *restrict x, const real *restrict mean, const real *restrict scale,
                      const real *restrict shift, real *restrict out, ptrdiff_t rows, ptrdiff_t channels) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const real *xr = x + r * channels;
        real *outr = out + r * channels;
        #pragma omp simd
        for (ptrdiff_t j = 0; j < channels; j++) outr[j] = (xr[j] - mean[j]) * scale[j] + shift[j];
    }
}

/* sums[0][j] += Σ_r g[r, j] and sums[1][j] += Σ_r g[r, j] (x[r, j] - mean[j]): dbias and dweight / rstd. */
void NAME(batch_norm_backward_sums)(const real *restrict g, const real *restrict x, const real *restrict mean,
                                    double *restrict sums, ptrdiff_t rows, ptrdiff_t channels) {
    double *restrict sum_g = sums, *restrict sum_gc = sums + channels;
    for (ptrdiff_t r = 0; r < rows; r++) {
        const real *gr = g + r * channels, *xr = x + r * channels;
        #pragma omp simd
        for (ptrdiff_t j = 0; j < channels; j++) {
            sum_g[j] += (double)gr[j];
            sum_gc[j] += (double)(gr[j] * (xr[j] - mean[j]));
        }
    }
}

/* gx = (x - mean) per_centred + shift + g scale: the input's gradient, in numpy's order of operations. */
void NAME(batch_norm_backward)(const real *restrict g, const real *restrict x, const real *restrict mean,
                               const real *restrict per_centred, const real *restrict shift,
                               const real *restrict scale, real *restrict gx, ptrdiff_t rows, ptrdiff_t channels) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const real *gr = g + r * channels, *xr = x + r * channels;
        real *dr = gx + r * channels;
        #pragma omp simd
        for (ptrdiff_t j = 0; j < channels; j++) dr[j] = (xr[j] - mean[j]) * per_centred[j] + shift[j] + gr[j] * scale[j];
    }
}

/* col2im: add each window's entries back onto the (padded) input they came from. cols holds one window per row,
 * (n, ho, wo) rows of kh kw c numbers in (i, j, channel) order; gx is channels-last (the channels' stride 1)
 * with element strides s0 s1 s2 for image, row and column. geometry: n ho wo kh kw c sh sw dh dw s0 s1 s2.
 * Image by image, so that its part of gx stays in the cache while all its windows add onto it. */
void NAME(col2im)(const real *restrict cols, real *restrict gx, const ptrdiff_t *restrict geometry) {
    const ptrdiff_t n = geometry[0], ho = geometry[1], wo = geometry[2], kh = geometry[3], kw = geometry[4];
    const ptrdiff_t c = geometry[5], sh = geometry[6], sw = geometry[7], dh = geometry[8], dw = geometry[9];
    const ptrdiff_t s0 = geometry[10], s1 = geometry[11], s2 = geometry[12];
    for (ptrdiff_t b = 0; b < n; b++)
        for (ptrdiff_t y = 0; y < ho; y++)
            for (ptrdiff_t v = 0; v < wo; v++) {
                const real *window = cols + ((b * ho + y) * wo + v) * kh * kw * c;
                for (ptrdiff_t i = 0; i < kh; i++)
                    for (ptrdiff_t j = 0; j < kw; j++) {
                        const real *src = window + (i * kw + j) * c;
                        real *dst = gx + b * s0 + (y * sh + i * dh) * s1 + (v * sw + j * dw) * s2;
                        #pragma omp simd
                        for (ptrdiff_t k = 0; k < c; k++) dst[k] += src[k];
                    }
            }
}

/* Matrix products through the BLAS numpy loaded. Each is c (m, n) = op(a) op(b), + bias (n,) on every row where
 * bias is not NULL: op(a) is a (m, k) of row stride lda, or with trans_a the transpose of a (k, m) of row stride
 * lda; likewise b. `table` holds `count` of them, PRODUCT_FIELDS numbers each (addresses as integers). One
 * product is split over the team along c's rows or columns, whichever halves the larger operand; several
 * (a Linear layer's gradients) run at once, one per thread, each without packing an operand twice. Every part is
 * one call of the BLAS on one thread (kernels.py holds OpenBLAS to one meanwhile). */

/* y = op(A) x for A (m, n) of row stride lda: OpenBLAS's gemm is far slower than its gemv on one column. */
static void NAME(gemv)(int trans, ptrdiff_t m, ptrdiff_t n, const real *a, ptrdiff_t lda, const real *x,
                       ptrdiff_t incx, real *y, ptrdiff_t incy) {
    if (sizeof(real) == sizeof(float) && blas.wide)
        ((sgemv64_t)blas.sgemv)(CBLAS_ROW_MAJOR, trans, m, n, 1.0f, (const float *)a, lda, (const float *)x, incx,
                                0.0f, (float *)y, incy);
    else if (sizeof(real) == sizeof(float))
        ((sgemv32_t)blas.sgemv)(CBLAS_ROW_MAJOR, trans, (int32_t)m, (int32_t)n, 1.0f, (const float *)a, (int32_t)lda,
                                (const float *)x, (int32_t)incx, 0.0f, (float *)y, (int32_t)incy);
    else if (blas.wide)
        ((dgemv64_t)blas.dgemv)(CBLAS_ROW_MAJOR, trans, m, n, 1.0, (const double *)a, lda, (const double *)x, incx,
                                0.0, (double *)y, incy);
    else
        ((dgemv32_t)blas.dgemv)(CBLAS_ROW_MAJOR, trans, (int32_t)m, (int32_t)n, 1.0, (const double *)a,
                                (int32_t)lda, (const double *)x, (int32_t)incx, 0.0, (double *)y, (int32_t)incy);
}

static void NAME(gemm)(const ptrdiff_t *p, ptrdiff_t row0, ptrdiff_t rows, ptrdiff_t col0, ptrdiff_t cols) {
    const int trans_a = (int)p[PRODUCT_TRANS_A], trans_b = (int)p[PRODUCT_TRANS_B];
    const ptrdiff_t k = p[PRODUCT_K], lda = p[PRODUCT_LDA], ldb = p[PRODUCT_LDB], ldc = p[PRODUCT_LDC];
    const real *a = (const real *)p[PRODUCT_A] + (trans_a ? row0 : row0 * lda);
    const real *b = (const real *)p[PRODUCT_B] + (trans_b ? col0 * ldb : col0);
    const real *bias = (const real *)p[PRODUCT_BIAS];
    real *c = (real *)p[PRODUCT_C] + row0 * ldc + col0;
    if (rows <= 0 || cols <= 0) return;
    const int ta = trans_a ? CBLAS_TRANS : CBLAS_NO_TRANS, tb = trans_b ? CBLAS_TRANS : CBLAS_NO_TRANS;
    if (cols == 1)  /* c = op(a) b: a matrix times a vector */
        NAME(gemv)(ta, trans_a ? k : rows, trans_a ? rows : k, a, lda, b, trans_b ? 1 : ldb, c, ldc);
    else if (rows == 1)  /* cᵀ = op(b)ᵀ aᵀ */
        NAME(gemv)(trans_b ? CBLAS_NO_TRANS : CBLAS_TRANS, trans_b ? cols : k, trans_b ? k : cols, b, ldb, a,
                   trans_a ? lda : 1, c, 1);
    else if (sizeof(real) == sizeof(float) && blas.wide)
        ((sgemm64_t)blas.sgemm)(CBLAS_ROW_MAJOR, ta, tb, rows, cols, k, 1.0f, (const float *)a, lda, (const float *)b,
                                ldb, 0.0f, (float *)c, ldc);
    else if (sizeof(real) == sizeof(float))
        ((sgemm32_t)blas.sgemm)(CBLAS_ROW_MAJOR, ta, tb, (int32_t)rows, (int32_t)cols, (int32_t)k, 1.0f,
                                (const float *)a, (int32_t)lda, (const float *)b, (int32_t)ldb, 0.0f, (float *)c,
                                (int32_t)ldc);
    else if (blas.wide)
        ((dgemm64_t)blas.dgemm)(CBLAS_ROW_MAJOR, ta, tb, rows, cols, k, 1.0, (const double *)a, lda,
                                (const double *)b, ldb, 0.0, (double *)c, ldc);
    else
        ((dgemm32_t)blas.dgemm)(CBLAS_ROW_MAJOR, ta, tb, (int32_t)rows, (int32_t)cols, (int32_t)k, 1.0,
                                (const double *)a, (int32_t)lda, (const double *)b, (int32_t)ldb, 0.0, (double *)c,
                                (int32_t)ldc);
    if (bias != NULL)
        for (ptrdiff_t r = 0; r < rows; r++) {
            real *cr = c + r * ldc;
            #pragma omp simd
            for (ptrdiff_t j = 0; j < cols; j++) cr[j] += bias[col0 + j];
        }
}

typedef struct {
    const ptrdiff_t *table;
    ptrdiff_t count;
} NAME(product_job);

static void NAME(product_part)(void *job, ptrdiff_t part, ptrdiff_t parts) {
    const NAME(product_job) *j = job;
    if (j->count > 1) {  /* product `part` whole */
        const ptrdiff_t *p = j->table + part * PRODUCT_FIELDS;
        NAME(gemm)(p, 0, p[PRODUCT_M], 0, p[PRODUCT_N]);
        return;
    }
    const ptrdiff_t *p = j->table, m = p[PRODUCT_M], n = p[PRODUCT_N];
    ptrdiff_t lo, hi;
    team_bounds(m >= n ? m : n, part, parts, 16, &lo, &hi);
    if (m >= n)
        NAME(gemm)(p, lo, hi - lo, 0, n);
    else
        NAME(gemm)(p, 0, m, lo, hi - lo);
}

void NAME(products)(const ptrdiff_t *table, ptrdiff_t count, ptrdiff_t min_work, ptrdiff_t threads) {
    NAME(product_job) job = {table, count};
    const ptrdiff_t *p = table;
    const ptrdiff_t parts = count > 1 ? count : team_parts(p[PRODUCT_M] * p[PRODUCT_N] * p[PRODUCT_K], min_work, threads);
    team_run(NAME(product_part), &job, parts, threads);
}

/* Scaled dot-product attention, one (batch, head) pair at a time, the pairs split over the team: the same
 * maths as attention.py's numpy code (read its docstring for the backward), row by row in loops small enough to
 * stay in the core's cache. geometry: B H T S D Dv causal, then the element strides (batch, head, row) of q, k, v
 * and g; a row's D numbers are contiguous. probs (B, H, T, S) and out (B, H, T, Dv) are contiguous, as are keep
 * (dropout's multipliers, or NULL) and dq, dk, dv (or NULL, not wanted). causal: query i sees keys 0..i. */
#ifndef ATTENTION_GEOMETRY_DECLARED
#define ATTENTION_GEOMETRY_DECLARED
enum { A_B, A_H, A_T, A_S, A_D, A_DV, A_CAUSAL, A_QS, A_KS = A_QS + 3, A_VS = A_KS + 3, A_GS = A_VS + 3,
       A_LENGTH = A_GS + 3 };
#endif

#define BLOCK 16 /* columns a register block holds: one or two vector registers */
#define BLOCK_ROWS 4 /* rows of a register block: independent sums, so that an addition need not wait on the last */

/* c[r crs + j] = Σ_t a[r ars + t ats] b[t bts + j] for r < m, j < n, t < k: a small matrix product for one core,
 * BLOCK_ROWS x BLOCK of c at a time held in registers (no BLAS call: for the (T, S) matrices of one head, a call's
 * own work on its operands costs more than the product). */
typedef real NAME(block) __attribute__((vector_size(BLOCK * sizeof(real))));

static void NAME(small_product)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const real *restrict a, ptrdiff_t ars,
                                ptrdiff_t ats, const real *restrict b, ptrdiff_t bts, real *restrict c,
                                ptrdiff_t crs) {
    for (ptrdiff_t r0 = 0; r0 < m; r0 += BLOCK_ROWS)
        for (ptrdiff_t j0 = 0; j0 < n; j0 += BLOCK) {
            const ptrdiff_t rows = m - r0 < BLOCK_ROWS ? m - r0 : BLOCK_ROWS, width = n - j0 < BLOCK ? n - j0 : BLOCK;
            const real *ar = a + r0 * ars, *bj = b + j0;
            real acc[BLOCK_ROWS][BLOCK] = {{0}};
            if (rows == BLOCK_ROWS && width == BLOCK) {  /* in vector registers (GCC's vector types) */
                NAME(block) c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, bt;
                for (ptrdiff_t t = 0; t < k; t++) {
                    __builtin_memcpy(&bt, bj + t * bts, sizeof bt);
                    c0 += ar[t * ats] * bt;
                    c1 += ar[ars + t * ats] * bt;
                    c2 += ar[2 * ars + t * ats] * bt;
                    c3 += ar[3 * ars + t * ats] * bt;
                }
                __builtin_memcpy(acc[0], &c0, sizeof c0);
                __builtin_memcpy(acc[1], &c1, sizeof c1);
                __builtin_memcpy(acc[2], &c2, sizeof c2);
                __builtin_memcpy(acc[3], &c3, sizeof c3);
            } else {
                for (ptrdiff_t t = 0; t < k; t++)
                    for (ptrdiff_t r = 0; r < rows; r++)
                        for (ptrdiff_t l = 0; l < width; l++) acc[r][l] += ar[r * ars + t * ats] * bj[t * bts + l];
            }
            for (ptrdiff_t r = 0; r < rows; r++)
                for (ptrdiff_t l = 0; l < width; l++) c[(r0 + r) * crs + j0 + l] = acc[r][l];
        }
}

typedef struct {
    const real *q, *k, *v, *keep, *g;
    real *probs, *out, *dq, *dk, *dv;
    const ptrdiff_t *geometry;
    double scale;
} NAME(attention_job);

/* The pair's matrix `which` (A_QS, A_KS, A_VS or A_GS) of pair n = b H + h. */
#define PAIR(base, n, which) ((base) + ((n) / p[A_H]) * p[which] + ((n) % p[A_H]) * p[(which) + 1])

/* Causal attention skips the blocks above the diagonal: CHUNK query rows at a time see keys up to the chunk's last. */
#define CHUNK 32

static ptrdiff_t NAME(keys_seen)(const ptrdiff_t *p, ptrdiff_t last_row) {
    return p[A_CAUSAL] && last_row + 1 < p[A_S] ? last_row + 1 : p[A_S];
}

static void NAME(attention_forward_part)(void *job, ptrdiff_t part, ptrdiff_t parts) {
    const NAME(attention_job) *j = job;
    const ptrdiff_t *p = j->geometry;
    const ptrdiff_t T = p[A_T], S = p[A_S], D = p[A_D], DV = p[A_DV], qs = p[A_QS + 2], ks = p[A_KS + 2];
    const real scale = (real)j->scale;
    ptrdiff_t lo, hi;
    team_bounds(p[A_B] * p[A_H], part, parts, 1, &lo, &hi);
    /* the pair's k transposed (D, S), then (with dropout) its dropped weights (T, S) */
    real *kt = malloc(sizeof(real) * (size_t)(D * S + (j->keep != NULL) * T * S));
    if (kt == NULL) abort();
    real *dropped = kt + D * S;
    for (ptrdiff_t n = lo; n < hi; n++) {
        const real *q = PAIR(j->q, n, A_QS), *k = PAIR(j->k, n, A_KS), *v = PAIR(j->v, n, A_VS);
        const real *keep = j->keep == NULL ? NULL : j->keep + n * T * S;
        real *probs = j->probs + n * T * S, *out = j->out + n * T * DV;
        for (ptrdiff_t s = 0; s < S; s++)
            for (ptrdiff_t d = 0; d < D; d++) kt[d * S + s] = k[s * ks + d];
        for (ptrdiff_t r0 = 0; r0 < T; r0 += CHUNK) {
            const ptrdiff_t r1 = r0 + CHUNK < T ? r0 + CHUNK : T, width = NAME(keys_seen)(p, r1 - 1);
            NAME(small_product)(r1 - r0, width, D, q + r0 * qs, qs, 1, kt, S, probs + r0 * S, S);
            for (ptrdiff_t i = r0; i < r1; i++) {
                real *restrict row = probs + i * S;
                const ptrdiff_t seen = NAME(keys_seen)(p, i);
                #pragma omp simd
                for (ptrdiff_t s = 0; s < seen; s++) row[s] *= scale;
                NAME(softmax_row)(row, seen);
                for (ptrdiff_t s = seen; s < S; s++) row[s] = 0;
                if (keep != NULL) {
                    #pragma omp simd
                    for (ptrdiff_t s = 0; s < S; s++) dropped[i * S + s] = row[s] * keep[i * S + s];
                }
            }
            const real *weights = keep == NULL ? probs : dropped;
            NAME(small_product)(r1 - r0, DV, width, weights + r0 * S, S, 1, v, p[A_VS + 2], out + r0 * DV, DV);
        }
    }
    free(kt);
}

void NAME(attention)(const real *q, const real *k, const real *v, const real *keep, real *probs, real *out,
                     const ptrdiff_t *geometry, double scale, ptrdiff_t threads) {
    NAME(attention_job) job = {q, k, v, keep, NULL, probs, out, NULL, NULL, NULL, geometry, scale};
    const ptrdiff_t pairs = geometry[A_B] * geometry[A_H];
    const ptrdiff_t work = geometry[A_T] * geometry[A_S] * (geometry[A_D] + geometry[A_DV]);  /* per pair */
    team_run(NAME(attention_forward_part), &job, team_parts(pairs, 1 + TEAM_MIN_NUMBERS / (work + 1), threads),
             threads);
}

static void NAME(attention_backward_part)(void *job, ptrdiff_t part, ptrdiff_t parts) {
    const NAME(attention_job) *j = job;
    const ptrdiff_t *p = j->geometry;
    const ptrdiff_t T = p[A_T], S = p[A_S], D = p[A_D], DV = p[A_DV];
    const ptrdiff_t qs = p[A_QS + 2], ks = p[A_KS + 2], vs = p[A_VS + 2], gs = p[A_GS + 2];
    const real scale = (real)j->scale;
    ptrdiff_t lo, hi;
    team_bounds(p[A_B] * p[A_H], part, parts, 1, &lo, &hi);
    /* v transposed (Dv, S), the dscores (T, S), then (with dropout) the dropped weights (T, S) */
    real *vt = malloc(sizeof(real) * (size_t)(DV * S + T * S + (j->keep != NULL) * T * S));
    if (vt == NULL) abort();
    real *ds = vt + DV * S, *dropped = ds + T * S;
    for (ptrdiff_t n = lo; n < hi; n++) {
        const real *q = PAIR(j->q, n, A_QS), *k = PAIR(j->k, n, A_KS), *v = PAIR(j->v, n, A_VS);
        const real *g = PAIR(j->g, n, A_GS);
        const real *keep = j->keep == NULL ? NULL : j->keep + n * T * S;
        const real *probs = j->probs + n * T * S, *out = j->out + n * T * DV;
        real *dq = j->dq == NULL ? NULL : j->dq + n * T * D;
        real *dk = j->dk == NULL ? NULL : j->dk + n * S * D, *dv = j->dv == NULL ? NULL : j->dv + n * S * DV;
        const real *weights = probs;
        if (keep != NULL) {
            for (ptrdiff_t x = 0; x < T * S; x++) dropped[x] = probs[x] * keep[x];
            weights = dropped;
        }
        /* dv = weightsᵀ g: keys c0:c1 are seen by the queries from c0 on (causal), by all otherwise */
        for (ptrdiff_t c0 = 0; dv != NULL && c0 < S; c0 += CHUNK) {
            const ptrdiff_t c1 = c0 + CHUNK < S ? c0 + CHUNK : S, first = p[A_CAUSAL] ? (c0 < T ? c0 : T) : 0;
            NAME(small_product)(c1 - c0, DV, T - first, weights + first * S + c0, 1, S, g + first * gs, gs,
                                dv + c0 * DV, DV);
        }
        if (dq == NULL && dk == NULL) continue;
        for (ptrdiff_t s = 0; s < S; s++)
            for (ptrdiff_t d = 0; d < DV; d++) vt[d * S + s] = v[s * vs + d];
        for (ptrdiff_t r0 = 0; r0 < T; r0 += CHUNK) {
            const ptrdiff_t r1 = r0 + CHUNK < T ? r0 + CHUNK : T, width = NAME(keys_seen)(p, r1 - 1);
            NAME(small_product)(r1 - r0, width, DV, g + r0 * gs, gs, 1, vt, S, ds + r0 * S, S);  /* dP = g vᵀ */
            for (ptrdiff_t i = r0; i < r1; i++) {
                const real *restrict gi = g + i * gs, *restrict oi = out + i * DV, *restrict row = probs + i * S;
                real *restrict dsi = ds + i * S;
                const ptrdiff_t seen = NAME(keys_seen)(p, i);
                real total = 0;  /* D_i = rowsum(dO * out) */
                #pragma omp simd reduction(+:total)
                for (ptrdiff_t d = 0; d < DV; d++) total += gi[d] * oi[d];
                #pragma omp simd
                for (ptrdiff_t s = 0; s < seen; s++)
                    dsi[s] = ((keep == NULL ? dsi[s] : dsi[s] * keep[i * S + s]) - total) * row[s] * scale;
                for (ptrdiff_t s = seen; s < S; s++) dsi[s] = 0;
            }
            if (dq != NULL) NAME(small_product)(r1 - r0, D, width, ds + r0 * S, S, 1, k, ks, dq + r0 * D, D);
        }
        for (ptrdiff_t c0 = 0; dk != NULL && c0 < S; c0 += CHUNK) {  /* dk = dscoresᵀ q */
            const ptrdiff_t c1 = c0 + CHUNK < S ? c0 + CHUNK : S, first = p[A_CAUSAL] ? (c0 < T ? c0 : T) : 0;
            NAME(small_product)(c1 - c0, D, T - first, ds + first * S + c0, 1, S, q + first * qs, qs, dk + c0 * D, D);
        }
    }
    free(vt);
}

void NAME(attention_backward)(const real *q, const real *k, const real *v, const real *keep, const real *probs,
                              const real *out, const real *g, real *dq, real *dk, real *dv,
                              const ptrdiff_t *geometry, double scale, ptrdiff_t threads) {
    NAME(attention_job) job = {q, k, v, keep, g, (real *)probs, (real *)out, dq, dk, dv, geometry, scale};
    const ptrdiff_t pairs = geometry[A_B] * geometry[A_H];
    const ptrdiff_t work = 2 * geometry[A_T] * geometry[A_S] * (geometry[A_D] + geometry[A_DV]);
    team_run(NAME(attention_backward_part), &job, team_parts(pairs, 1 + TEAM_MIN_NUMBERS / (work + 1), threads),
             threads);
}
#undef PAIR
#undef BLOCK
#undef BLOCK_ROWS
#undef CHUNK
