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

/* One Adam(W) step in place, in PyTorch's order of operations:
 * p *= decay; m += (g - m)(1 - b1); v = b2 v + (1 - b2) g^2; p -= m / (sqrt(v) / sqrt(1 - b2^t) + eps) step_size */
void NAME(adam)(real *restrict p, const real *restrict g, real *restrict m, real *restrict v, ptrdiff_t n,
                double decay_, double step_size_, double one_minus_beta1_, double beta2_, double one_minus_beta2_,
                double bias_correction2_sqrt_, double eps_) {
    const real decay = (real)decay_, step_size = (real)step_size_, one_minus_beta1 = (real)one_minus_beta1_;
    const real beta2 = (real)beta2_, one_minus_beta2 = (real)one_minus_beta2_;
    const real bias_correction2_sqrt = (real)bias_correction2_sqrt_, eps = (real)eps_;
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

/* x (rows, features) -> mean, rstd = 1 / sqrt(var + eps) (rows,), out = xhat weight + bias with
 * xhat = (x - mean) rstd. xhat is not kept: (x - mean) rstd gives it again to the bit. */
void NAME(layer_norm)(const real *restrict x, const real *restrict weight, const real *restrict bias, double eps,
                      real *restrict mean, real *restrict rstd, real *restrict out, ptrdiff_t rows,
                      ptrdiff_t features) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const real *xr = x + r * features;
        real *outr = out + r * features;
        real total = 0, squares = 0;
        #pragma omp simd reduction(+:total)
        for (ptrdiff_t j = 0; j < features; j++) total += xr[j];
        const real m = total / (real)features;
        #pragma omp simd reduction(+:squares)
        for (ptrdiff_t j = 0; j < features; j++) {
            const real centred = xr[j] - m;
            squares += centred * centred;
        }
        const real inverse = (real)1 / SQRT(squares / (real)features + (real)eps);
        mean[r] = m;
        rstd[r] = inverse;
        #pragma omp simd
        for (ptrdiff_t j = 0; j < features; j++) outr[j] = (xr[j] - m) * inverse * weight[j] + bias[j];
    }
}

/* dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) per row, with xhat = (x - mean) rstd (the forward's,
 * to the bit) and dxhat = g weight; dweight += the column sums of g xhat, dbias += those of g. */
void NAME(layer_norm_backward)(const real *restrict g, const real *restrict x, const real *restrict mean,
                               const real *restrict rstd, const real *restrict weight, real *restrict gx,
                               real *restrict dweight, real *restrict dbias, ptrdiff_t rows, ptrdiff_t features) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const real *gr = g + r * features, *xr = x + r * features;
        const real m = mean[r], inverse = rstd[r];
        real *dr = gx + r * features;
        real mean_g = 0, mean_gx = 0;
        #pragma omp simd reduction(+:mean_g, mean_gx)
        for (ptrdiff_t j = 0; j < features; j++) {
            const real h = (xr[j] - m) * inverse;
            const real gh = gr[j] * weight[j];
            mean_g += gh;
            mean_gx += gh * h;
            dweight[j] += gr[j] * h;
            dbias[j] += gr[j];
        }
        mean_g /= (real)features;
        mean_gx /= (real)features;
        #pragma omp simd
        for (ptrdiff_t j = 0; j < features; j++)
            dr[j] = (gr[j] * weight[j] - mean_g - (xr[j] - m) * inverse * mean_gx) * inverse;
    }
}

#define GELU_C 0.7978845608028654 /* sqrt(2 / pi) */

/* GELU's tanh form: out = 0.5 x (1 + t), t = tanh(sqrt(2/pi) x (1 + 0.044715 x^2)). */
void NAME(gelu_tanh)(const real *restrict x, real *restrict out, ptrdiff_t n) {
    const real a = (real)0.044715, c = (real)GELU_C;
    #pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) {
        const real xi = x[i];
        const real ti = TANH((xi * xi * a + 1) * xi * c);
        out[i] = (ti + 1) * xi * (real)0.5;
    }
}

/* out = g (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 x^2)): GELU's derivative times g, with t
 * computed again as the forward computed it (to the bit): keeping t instead would hold one more number per
 * hidden unit from forward to backward, at the top of a step's memory, to save one tanh. */
void NAME(gelu_tanh_backward)(const real *restrict x, const real *restrict g, real *restrict out, ptrdiff_t n) {
    const real a = (real)0.044715, k = (real)(3 * 0.044715 * GELU_C), c = (real)GELU_C;
    #pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) {
        const real xi = x[i];
        const real ti = TANH((xi * xi * a + 1) * xi * c);
        const real slope = xi * xi * k + c;
        out[i] = ((1 - ti * ti) * xi * slope + ti + 1) * (real)0.5 * g[i];
    }
}

#if defined(VECTOR_MATH) && !defined(VECTOR_EXP_DECLARED)
#define VECTOR_EXP_DECLARED
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
double exp(double);
#endif

#define EXP(x) (sizeof(real) == sizeof(float) ? (real)expf((float)(x)) : (real)exp((double)(x)))

/* Softmax over each row of x, in place: x - max, exp, / sum. The rows are x[a*s0 + b*s1 + r*s2 + (0..cols)]
 * for a < outer, b < middle, r < rows (strides in elements: a block of a larger array). A row whose maximum
 * is not finite is shifted by 0, and one that sums to 0 (all -inf: it attends to nothing) stays all zeros. */
void NAME(softmax_rows)(real *restrict x, ptrdiff_t outer, ptrdiff_t middle, ptrdiff_t rows, ptrdiff_t cols,
                        ptrdiff_t s0, ptrdiff_t s1, ptrdiff_t s2) {
    for (ptrdiff_t a = 0; a < outer; a++)
        for (ptrdiff_t b = 0; b < middle; b++)
            for (ptrdiff_t r = 0; r < rows; r++) {
                real *row = x + a * s0 + b * s1 + r * s2;
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

/* Inverted-dropout multipliers: out[i] = 0 where the top 24 bits of hash(i) fall below threshold (p 2^24,
 * rounded up), else scale (1 / (1 - p)). The hash is SplitMix64's output function on its Weyl sequence
 * seed + (i + 1) * golden: SplitMix64's own stream, read by index, which numpy's formula can do too. */
void NAME(dropout_mask)(real *restrict out, ptrdiff_t n, uint64_t seed, uint64_t threshold, double scale_) {
    const real scale = (real)scale_;
    #pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t z = seed + ((uint64_t)i + 1) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        out[i] = (z >> 40) >= threshold ? scale : (real)0;
    }
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
