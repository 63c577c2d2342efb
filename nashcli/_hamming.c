/* Exact Hamming top-k and distance matrices over bit planes, for nashcli.search.
 *
 * The database is a set of *planes*: plane w holds word w (bits 64w..64w+63) of every code, as
 * one contiguous uint64 array (a numpy array or an np.memmap; read through the buffer protocol,
 * never copied). Queries are (q, n_words) uint64 words.
 *
 * Why a CPython extension and not ctypes: setuptools builds it like any extension (the right
 * ABI, flags and file name on every platform, `optional=True` when there is no compiler), the
 * buffer protocol hands us numpy/memmap memory without numpy's C headers (so building needs only
 * a C compiler, not numpy), and a call costs well under a microsecond of argument handling.
 *
 * How: worker threads (the caller plus detached pthreads) claim chunks of the database in
 * increasing order from an atomic counter. Inside a chunk, a block of codes small enough for L1
 * is scanned by every query of the batch before the next block is read, so a batch reads the
 * database from memory once, not once per query. Distances use AVX-512 VPOPCNTDQ (8 codes per
 * instruction) where the CPU has it, else the popcnt instruction, else portable bit twiddling:
 * chosen at run time, so one build runs on any x86-64 (never -march=native).
 *
 * Top-k: each thread keeps, per query, an array of keys (distance << 48 | position) in position
 * order and a bound. A code is appended (branch-free in the scalar loop, one compress-store per
 * 8 codes in the AVX-512 one) only if its distance is *strictly* under the bound. When the array
 * is full it is pruned back to the k best with a histogram of the distances (they are small
 * integers): the new bound D is the k-th distance, every key under D stays and the earliest ones
 * at D fill the rest. A thread sees positions in increasing order, so a later code that merely
 * ties the k-th best loses the tie and may be refused. At the end each thread's keys are sorted
 * (a stable counting sort by distance, positions already ascending) and the threads' lists are
 * merged: every row comes out ordered by (distance, position), exactly like a stable brute-force
 * sort.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define NASH_X86 1
#include <immintrin.h>
#define ATTR_POPCNT __attribute__((target("popcnt")))
#define ATTR_AVX512 __attribute__((target("avx512f,avx512vpopcntdq")))
#endif

enum { ISA_GENERIC = 0, ISA_POPCNT = 1, ISA_AVX512 = 2, N_ISAS = 3 };
static const char *const ISA_NAMES[N_ISAS] = {"generic", "popcnt", "avx512vpopcntdq"};

#define IDX_BITS 48
#define IDX_MASK ((UINT64_C(1) << IDX_BITS) - 1)
#define MAX_WORDS 1023 /* distances must fit the 16 bits above IDX_BITS */
#define MAX_THREADS 256
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------------------------------------ */
/* Per-query top-k state */

typedef struct {
    uint64_t *keys; /* candidates in position order; the first ones the k best of a prune */
    size_t size;
    uint64_t bound; /* admit a distance d only if d < bound */
} Top;

typedef struct { /* what pruning needs, per thread */
    size_t k, cap;  /* keep k; prune when fewer than 16 free slots of cap remain */
    uint64_t maxd;  /* the largest possible distance (64 * words) */
    uint32_t *hist; /* maxd + 1 counters */
    uint64_t *tmp;  /* k keys (for sorting) */
} Sel;

/* Keep the k best keys by (distance, position); set the bound to the k-th distance. */
static void top_prune(Top *t, const Sel *s) {
    const size_t n = t->size, k = s->k;
    uint64_t *keys = t->keys;
    if (n < k) return;
    uint32_t *h = s->hist;
    memset(h, 0, (size_t)(s->maxd + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) h[keys[i] >> IDX_BITS]++;
    size_t below = 0; /* keys with distance < D */
    uint64_t D = 0;
    while (below + h[D] < k) below += h[D++];
    size_t need = k - below; /* how many at distance D to keep: the earliest */
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = keys[i], d = key >> IDX_BITS;
        int tie = d == D && need > 0;
        need -= (size_t)tie;
        keys[j] = key;
        j += (size_t)(d < D || tie);
    }
    t->size = k;
    t->bound = D;
}

/* Prune to at most k and sort by (distance, position): a stable counting sort by distance. */
static void top_finish(Top *t, const Sel *s) {
    top_prune(t, s);
    const size_t n = t->size;
    uint32_t *h = s->hist;
    memset(h, 0, (size_t)(s->maxd + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) h[t->keys[i] >> IDX_BITS]++;
    uint32_t start = 0;
    for (uint64_t d = 0; d <= s->maxd; d++) {
        uint32_t c = h[d];
        h[d] = start;
        start += c;
    }
    for (size_t i = 0; i < n; i++) s->tmp[h[t->keys[i] >> IDX_BITS]++] = t->keys[i];
    memcpy(t->keys, s->tmp, n * sizeof(uint64_t));
}

/* ------------------------------------------------------------------------------------------ */
/* Scalar kernels: a portable one and a popcnt one, from the same body */

static inline uint64_t popcount_swar(uint64_t x) {
    x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
    x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
    x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
    return (x * UINT64_C(0x0101010101010101)) >> 56;
}

#define SCALAR_DIST(POPC, NW, i, d)                                   \
    do {                                                              \
        d = POPC(p[0][i] ^ q[0]);                                     \
        for (int w_ = 1; w_ < (NW); w_++) d += POPC(p[w_][i] ^ q[w_]); \
    } while (0)

/* Append code i at distance d if d is under the bound (branch-free: write always, keep if
 * under); prune when the array is full. Uses keys, size, bound, t and s of the caller. */
#define SCALAR_KEEP(d, i)                                  \
    do {                                                   \
        keys[size] = ((d) << IDX_BITS) | (i);              \
        size += (d) < bound;                               \
        if (__builtin_expect(size == s->cap, 0)) {         \
            t->size = size;                                \
            top_prune(t, s);                               \
            size = t->size;                                \
            bound = t->bound;                              \
        }                                                  \
    } while (0)

#define DEFINE_SCALAR(NAME, ATTR, POPC)                                                         \
    ATTR ALWAYS_INLINE void NAME##_topk_nw(const uint64_t *const *p, const int nw,             \
                                           const uint64_t *q, size_t lo, size_t hi, Top *t,    \
                                           const Sel *s) {                                     \
        uint64_t *keys = t->keys, bound = t->bound;                                            \
        size_t size = t->size, i = lo;                                                         \
        /* Four codes per test: once the bound is tight almost no code passes, so the common   \
         * case is four distances, one well-predicted branch and no store. */                   \
        for (; i + 4 <= hi; i += 4) {                                                          \
            uint64_t d4[4];                                                                    \
            SCALAR_DIST(POPC, nw, i, d4[0]);                                                   \
            SCALAR_DIST(POPC, nw, i + 1, d4[1]);                                               \
            SCALAR_DIST(POPC, nw, i + 2, d4[2]);                                               \
            SCALAR_DIST(POPC, nw, i + 3, d4[3]);                                               \
            if (__builtin_expect(((d4[0] < bound) | (d4[1] < bound) | (d4[2] < bound) |        \
                                  (d4[3] < bound)) == 0, 1))                                   \
                continue;                                                                      \
            for (int u = 0; u < 4; u++) SCALAR_KEEP(d4[u], i + u);                             \
        }                                                                                      \
        for (; i < hi; i++) {                                                                  \
            uint64_t d;                                                                        \
            SCALAR_DIST(POPC, nw, i, d);                                                       \
            SCALAR_KEEP(d, i);                                                                 \
        }                                                                                      \
        t->size = size;                                                                        \
    }                                                                                          \
    ATTR static void NAME##_topk(const uint64_t *const *p, int nw, const uint64_t *q,          \
                                 size_t lo, size_t hi, Top *t, const Sel *s) {                 \
        switch (nw) {                                                                          \
            case 1: NAME##_topk_nw(p, 1, q, lo, hi, t, s); break;                              \
            case 2: NAME##_topk_nw(p, 2, q, lo, hi, t, s); break;                              \
            case 3: NAME##_topk_nw(p, 3, q, lo, hi, t, s); break;                              \
            case 4: NAME##_topk_nw(p, 4, q, lo, hi, t, s); break;                              \
            default: NAME##_topk_nw(p, nw, q, lo, hi, t, s); break;                            \
        }                                                                                      \
    }                                                                                          \
    ATTR ALWAYS_INLINE void NAME##_dist_nw(const uint64_t *const *p, const int nw,             \
                                           const uint64_t *q, size_t lo, size_t hi,            \
                                           int32_t *out) {                                     \
        for (size_t i = lo; i < hi; i++) {                                                     \
            uint64_t d;                                                                        \
            SCALAR_DIST(POPC, nw, i, d);                                                       \
            out[i] = (int32_t)d;                                                               \
        }                                                                                      \
    }                                                                                          \
    ATTR static void NAME##_dist(const uint64_t *const *p, int nw, const uint64_t *q,          \
                                 size_t lo, size_t hi, int32_t *out) {                         \
        switch (nw) {                                                                          \
            case 1: NAME##_dist_nw(p, 1, q, lo, hi, out); break;                               \
            case 2: NAME##_dist_nw(p, 2, q, lo, hi, out); break;                               \
            default: NAME##_dist_nw(p, nw, q, lo, hi, out); break;                             \
        }                                                                                      \
    }

DEFINE_SCALAR(generic, , popcount_swar)
#ifdef NASH_X86
DEFINE_SCALAR(popcnt, ATTR_POPCNT, __builtin_popcountll)
#endif

/* ------------------------------------------------------------------------------------------ */
/* AVX-512 VPOPCNTDQ kernels: 8 codes per instruction; NW words kept in registers */

#ifdef NASH_X86
ATTR_AVX512 ALWAYS_INLINE __m512i avx512_dist8(const uint64_t *const *p, const __m512i *qv,
                                               const int nw, size_t i, __mmask8 m) {
    __m512i acc = _mm512_popcnt_epi64(
        _mm512_xor_si512(_mm512_maskz_loadu_epi64(m, (const void *)(p[0] + i)), qv[0]));
    for (int w = 1; w < nw; w++)
        acc = _mm512_add_epi64(
            acc, _mm512_popcnt_epi64(_mm512_xor_si512(
                     _mm512_maskz_loadu_epi64(m, (const void *)(p[w] + i)), qv[w])));
    return acc;
}

/* Append the keys of the codes i..i+7 selected by m. */
ATTR_AVX512 ALWAYS_INLINE void avx512_take(Top *t, const Sel *s, __m512i acc, __mmask8 m,
                                           size_t i) {
    if (t->size + 8 > s->cap) top_prune(t, s);
    const __m512i lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    __m512i key = _mm512_or_si512(_mm512_slli_epi64(acc, IDX_BITS),
                                  _mm512_add_epi64(_mm512_set1_epi64((long long)i), lanes));
    _mm512_mask_compressstoreu_epi64((void *)(t->keys + t->size), m, key);
    t->size += (size_t)__builtin_popcount((unsigned)m);
}

ATTR_AVX512 ALWAYS_INLINE void avx512_topk_nw(const uint64_t *const *p, const int nw,
                                              const uint64_t *q, size_t lo, size_t hi, Top *t,
                                              const Sel *s) {
    __m512i qv[8];
    for (int w = 0; w < nw; w++) qv[w] = _mm512_set1_epi64((long long)q[w]);
    __m512i bv = _mm512_set1_epi64((long long)t->bound);
    size_t i = lo;
    for (; i + 16 <= hi; i += 16) { /* two vectors per test of the masks */
        __m512i a0 = avx512_dist8(p, qv, nw, i, 0xff);
        __m512i a1 = avx512_dist8(p, qv, nw, i + 8, 0xff);
        __mmask8 m0 = _mm512_cmplt_epu64_mask(a0, bv);
        __mmask8 m1 = _mm512_cmplt_epu64_mask(a1, bv);
        if (__builtin_expect((m0 | m1) != 0, 0)) {
            if (m0) avx512_take(t, s, a0, m0, i);
            if (m1) avx512_take(t, s, a1, m1, i + 8);
            bv = _mm512_set1_epi64((long long)t->bound);
        }
    }
    for (; i < hi; i += 8) {
        __mmask8 live = hi - i >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (hi - i)) - 1);
        __m512i a = avx512_dist8(p, qv, nw, i, live);
        __mmask8 m = _mm512_mask_cmplt_epu64_mask(live, a, bv);
        if (m) {
            avx512_take(t, s, a, m, i);
            bv = _mm512_set1_epi64((long long)t->bound);
        }
    }
}

ATTR_AVX512 static void avx512_topk(const uint64_t *const *p, int nw, const uint64_t *q,
                                    size_t lo, size_t hi, Top *t, const Sel *s) {
    switch (nw) {
        case 1: avx512_topk_nw(p, 1, q, lo, hi, t, s); break;
        case 2: avx512_topk_nw(p, 2, q, lo, hi, t, s); break;
        case 3: avx512_topk_nw(p, 3, q, lo, hi, t, s); break;
        case 4: avx512_topk_nw(p, 4, q, lo, hi, t, s); break;
        case 5: avx512_topk_nw(p, 5, q, lo, hi, t, s); break;
        case 6: avx512_topk_nw(p, 6, q, lo, hi, t, s); break;
        case 7: avx512_topk_nw(p, 7, q, lo, hi, t, s); break;
        case 8: avx512_topk_nw(p, 8, q, lo, hi, t, s); break;
        default: popcnt_topk(p, nw, q, lo, hi, t, s); break;
    }
}

ATTR_AVX512 ALWAYS_INLINE void avx512_dist_nw(const uint64_t *const *p, const int nw,
                                              const uint64_t *q, size_t lo, size_t hi,
                                              int32_t *out) {
    __m512i qv[8];
    for (int w = 0; w < nw; w++) qv[w] = _mm512_set1_epi64((long long)q[w]);
    for (size_t i = lo; i < hi; i += 8) {
        __mmask8 live = hi - i >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (hi - i)) - 1);
        _mm512_mask_cvtepi64_storeu_epi32((void *)(out + i), live,
                                          avx512_dist8(p, qv, nw, i, live));
    }
}

ATTR_AVX512 static void avx512_dist(const uint64_t *const *p, int nw, const uint64_t *q,
                                    size_t lo, size_t hi, int32_t *out) {
    switch (nw) {
        case 1: avx512_dist_nw(p, 1, q, lo, hi, out); break;
        case 2: avx512_dist_nw(p, 2, q, lo, hi, out); break;
        case 3: avx512_dist_nw(p, 3, q, lo, hi, out); break;
        case 4: avx512_dist_nw(p, 4, q, lo, hi, out); break;
        default: popcnt_dist(p, nw, q, lo, hi, out); break;
    }
}
#endif

typedef void (*topk_fn)(const uint64_t *const *, int, const uint64_t *, size_t, size_t, Top *,
                        const Sel *);
typedef void (*dist_fn)(const uint64_t *const *, int, const uint64_t *, size_t, size_t,
                        int32_t *);

static int isa_available(int isa) {
    if (isa == ISA_GENERIC) return 1;
#ifdef NASH_X86
    __builtin_cpu_init();
    if (isa == ISA_POPCNT) return __builtin_cpu_supports("popcnt");
    if (isa == ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq");
#endif
    return 0;
}

static topk_fn topk_kernel(int isa) {
#ifdef NASH_X86
    if (isa == ISA_AVX512) return avx512_topk;
    if (isa == ISA_POPCNT) return popcnt_topk;
#endif
    return generic_topk;
}

static dist_fn dist_kernel(int isa) {
#ifdef NASH_X86
    if (isa == ISA_AVX512) return avx512_dist;
    if (isa == ISA_POPCNT) return popcnt_dist;
#endif
    return generic_dist;
}

/* ------------------------------------------------------------------------------------------ */
/* A job shared by the threads of one call */

typedef struct { /* one thread's top-k state: Tops of every query, Sel, and their memory */
    Top *tops;
    Sel sel;
} State;

typedef struct {
    /* inputs */
    const uint64_t *const *planes;
    int nw;
    size_t n, nq, k;
    const uint64_t *queries;
    int32_t *dist_out; /* distances mode: (nq, n); NULL in top-k mode */
    topk_fn topk;
    dist_fn dist;
    size_t chunk, block, n_chunks;
    size_t next_chunk; /* claimed with an atomic add */
    /* threads */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int closed; /* set by the caller once it ran out of chunks: later helpers do nothing */
    int active; /* helpers working (the caller waits for these only) */
    int refs;   /* the caller + helpers not yet finished; the last one frees the job */
    int n_states;
    State *states[MAX_THREADS]; /* every worker's, once it finished (the caller's first) */
} Job;

/* Room for k kept keys plus at least as many (and 256) new ones between prunes. */
static size_t capacity(size_t k) { return k + (k > 256 ? k : 256); }

static State *alloc_state(const Job *job) {
    const size_t nq = job->nq, k = job->k, cap = capacity(k);
    const uint64_t maxd = 64 * (uint64_t)job->nw;
    /* one block: State, Tops, keys, tmp, hist (8-byte pieces first) */
    size_t bytes = sizeof(State) + nq * sizeof(Top) + (nq * cap + k) * sizeof(uint64_t) +
                   (size_t)(maxd + 1) * sizeof(uint32_t);
    State *st = (State *)malloc(bytes);
    if (!st) return NULL;
    st->tops = (Top *)(st + 1);
    uint64_t *keys = (uint64_t *)(st->tops + nq);
    for (size_t j = 0; j < nq; j++) {
        st->tops[j].keys = keys + j * cap;
        st->tops[j].size = 0;
        st->tops[j].bound = UINT64_MAX;
    }
    st->sel.k = k;
    st->sel.cap = cap;
    st->sel.maxd = maxd;
    st->sel.tmp = keys + nq * cap;
    st->sel.hist = (uint32_t *)(st->sel.tmp + k);
    return st;
}

/* Scan every chunk this thread can claim; then sort its candidates (top-k mode). */
static void work(Job *job, State *st) {
    const size_t n = job->n, nq = job->nq, block = job->block;
    const int nw = job->nw;
    for (;;) {
        size_t c = __atomic_fetch_add(&job->next_chunk, 1, __ATOMIC_RELAXED);
        if (c >= job->n_chunks) break;
        size_t lo = c * job->chunk;
        size_t hi = lo + job->chunk < n ? lo + job->chunk : n;
        for (size_t b = lo; b < hi; b += block) {
            size_t e = b + block < hi ? b + block : hi;
            for (size_t j = 0; j < nq; j++) {
                const uint64_t *q = job->queries + j * (size_t)nw;
                if (job->dist_out) {
                    job->dist(job->planes, nw, q, b, e, job->dist_out + j * n);
                } else if (st->tops[j].bound > 0) { /* bound 0: k exact matches already */
                    job->topk(job->planes, nw, q, b, e, &st->tops[j], &st->sel);
                }
            }
        }
    }
    if (st)
        for (size_t j = 0; j < nq; j++) top_finish(&st->tops[j], &st->sel);
}

static void job_release(Job *job) {
    pthread_mutex_lock(&job->mu);
    int last = --job->refs == 0;
    pthread_mutex_unlock(&job->mu);
    if (last) {
        for (int s = 0; s < job->n_states; s++) free(job->states[s]);
        pthread_mutex_destroy(&job->mu);
        pthread_cond_destroy(&job->cv);
        free(job);
    }
}

static void *helper_main(void *arg) {
    Job *job = (Job *)arg;
    pthread_mutex_lock(&job->mu);
    int late = job->closed;
    if (!late) job->active++;
    pthread_mutex_unlock(&job->mu);
    if (late) { /* started after the caller finished: nothing to do, nobody waits */
        job_release(job);
        return NULL;
    }
    State *st = job->dist_out ? NULL : alloc_state(job);
    if (st || job->dist_out) work(job, st); /* out of memory: the others do the chunks */
    pthread_mutex_lock(&job->mu);
    if (st) job->states[job->n_states++] = st;
    job->active--;
    pthread_cond_signal(&job->cv);
    pthread_mutex_unlock(&job->mu);
    job_release(job);
    return NULL;
}

/* Merge each query's sorted lists (one per thread) into its first k keys. */
static void merge(Job *job, int64_t *out_idx, int32_t *out_dist) {
    const size_t k = job->k;
    const int T = job->n_states;
    for (size_t j = 0; j < job->nq; j++) {
        const uint64_t *list[MAX_THREADS];
        size_t left[MAX_THREADS];
        for (int s = 0; s < T; s++) {
            list[s] = job->states[s]->tops[j].keys;
            left[s] = job->states[s]->tops[j].size;
        }
        for (size_t r = 0; r < k; r++) { /* k <= n: every code was seen by some thread */
            int best = -1;
            for (int s = 0; s < T; s++)
                if (left[s] && (best < 0 || *list[s] < *list[best])) best = s;
            uint64_t key = *list[best]++;
            left[best]--;
            out_idx[j * k + r] = (int64_t)(key & IDX_MASK);
            out_dist[j * k + r] = (int32_t)(key >> IDX_BITS);
        }
    }
}

/* Run the job on the caller plus up to threads-1 helpers; merge top-k into the outputs.
 * Returns 0, or -1 if memory ran out (nothing written). Called without the GIL. */
static int run_job(Job *job, int threads, int64_t *out_idx, int32_t *out_dist) {
    State *mine = NULL;
    if (!job->dist_out) {
        if (!(mine = alloc_state(job))) {
            free(job);
            return -1;
        }
        job->states[job->n_states++] = mine;
    }
    pthread_mutex_init(&job->mu, NULL);
    pthread_cond_init(&job->cv, NULL);
    job->refs = 1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int h = 1; h < threads; h++) {
        pthread_t tid;
        pthread_mutex_lock(&job->mu);
        job->refs++;
        pthread_mutex_unlock(&job->mu);
        if (pthread_create(&tid, &attr, helper_main, job) != 0) {
            pthread_mutex_lock(&job->mu);
            job->refs--;
            pthread_mutex_unlock(&job->mu);
            break; /* fewer threads; the caller scans what they would have */
        }
    }
    pthread_attr_destroy(&attr);
    work(job, mine);
    pthread_mutex_lock(&job->mu);
    job->closed = 1;
    while (job->active > 0) pthread_cond_wait(&job->cv, &job->mu);
    pthread_mutex_unlock(&job->mu);
    if (!job->dist_out) merge(job, out_idx, out_dist);
    job_release(job);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Python interface */

typedef struct {
    Py_buffer *views;
    const uint64_t **ptrs;
    Py_ssize_t count;
} Planes;

static void planes_release(Planes *pl) {
    for (Py_ssize_t w = 0; w < pl->count; w++) PyBuffer_Release(&pl->views[w]);
    PyMem_Free(pl->views);
    PyMem_Free((void *)pl->ptrs);
    pl->views = NULL;
    pl->ptrs = NULL;
    pl->count = 0;
}

/* Borrow each plane's memory (read-only, contiguous, 8-byte aligned, equal lengths). */
static int planes_get(PyObject *seq_obj, Planes *pl, size_t *n_out) {
    pl->views = NULL;
    pl->ptrs = NULL;
    pl->count = 0;
    PyObject *seq = PySequence_Fast(seq_obj, "planes must be a sequence of buffers");
    if (!seq) return -1;
    Py_ssize_t nw = PySequence_Fast_GET_SIZE(seq);
    if (nw < 1 || nw > MAX_WORDS) {
        PyErr_Format(PyExc_ValueError, "need 1 to %d planes, got %zd", MAX_WORDS, nw);
        Py_DECREF(seq);
        return -1;
    }
    pl->views = PyMem_Calloc((size_t)nw, sizeof(Py_buffer));
    pl->ptrs = PyMem_Calloc((size_t)nw, sizeof(uint64_t *));
    if (!pl->views || !pl->ptrs) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t w = 0; w < nw; w++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, w), &pl->views[w],
                               PyBUF_C_CONTIGUOUS) < 0)
            goto fail;
        pl->count = w + 1;
        Py_buffer *v = &pl->views[w];
        if (v->len % 8 || ((uintptr_t)v->buf) % 8) {
            PyErr_SetString(PyExc_ValueError, "planes must be aligned arrays of 8-byte words");
            goto fail;
        }
        if (w > 0 && v->len != pl->views[0].len) {
            PyErr_SetString(PyExc_ValueError, "all planes must have the same length");
            goto fail;
        }
        pl->ptrs[w] = (const uint64_t *)v->buf;
    }
    *n_out = (size_t)pl->views[0].len / 8;
    if (*n_out > IDX_MASK) {
        PyErr_SetString(PyExc_ValueError, "too many codes (at most 2**48)");
        goto fail;
    }
    Py_DECREF(seq);
    return 0;
fail:
    Py_DECREF(seq);
    planes_release(pl);
    return -1;
}

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t want,
                      const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (view->len != want || ((uintptr_t)view->buf) % 8) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd aligned bytes, got %zd", what, want,
                     view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int check_isa(int isa) {
    if (isa < 0 || isa >= N_ISAS || !isa_available(isa)) {
        PyErr_Format(PyExc_ValueError, "instruction set %d is not available here", isa);
        return -1;
    }
    return 0;
}

/* Chunk (claimed by a thread) and block (scanned by every query in turn) sizes. */
static void set_sizes(Job *job, int threads) {
    size_t block = 32768 / (8 * (size_t)job->nw); /* all planes of a block: 32 KB, in L1 */
    if (block < 256) block = 256;
    /* about 2**20 code-query pairs per chunk: small enough that the last chunks balance the
     * threads (and a thread descheduled by other processes holds up little), large enough that
     * claiming one costs nothing */
    size_t chunk = ((size_t)1 << 20) / (job->nq ? job->nq : 1);
    if (chunk > ((size_t)1 << 16)) chunk = (size_t)1 << 16;
    size_t per_thread = (job->n + 4 * (size_t)threads - 1) / (4 * (size_t)threads);
    if (chunk > per_thread) chunk = per_thread; /* several chunks per thread on small inputs */
    if (chunk < block) chunk = block;
    chunk = (chunk + block - 1) / block * block;
    job->block = block;
    job->chunk = chunk;
    job->n_chunks = (job->n + chunk - 1) / chunk;
}

static int clamp_threads(int threads, size_t n_chunks) {
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if ((size_t)threads > n_chunks) threads = (int)n_chunks;
    return threads < 1 ? 1 : threads;
}

PyDoc_STRVAR(topk_doc,
             "topk(planes, queries, k, out_idx, out_dist, threads, isa)\n--\n\n"
             "Exact top-k of each query (row of `queries`, uint64 (q, len(planes))) over the "
             "planes, written into out_idx (int64 (q, k)) and out_dist (int32 (q, k)), rows "
             "sorted by (distance, position). 1 <= k <= n is the caller's to ensure.");

static PyObject *py_topk(PyObject *self, PyObject *args) {
    PyObject *planes_obj, *q_obj, *idx_obj, *dist_obj;
    Py_ssize_t k;
    int threads, isa;
    if (!PyArg_ParseTuple(args, "OOnOOii", &planes_obj, &q_obj, &k, &idx_obj, &dist_obj,
                          &threads, &isa))
        return NULL;
    if (check_isa(isa) < 0) return NULL;
    Planes pl;
    size_t n;
    if (planes_get(planes_obj, &pl, &n) < 0) return NULL;
    Py_buffer qv, iv, dv;
    int have_q = 0, have_i = 0, have_d = 0;
    PyObject *result = NULL;
    size_t nw = (size_t)pl.count;
    if (PyObject_GetBuffer(q_obj, &qv, PyBUF_C_CONTIGUOUS) < 0) goto done;
    have_q = 1;
    if (qv.len % (Py_ssize_t)(8 * nw) || ((uintptr_t)qv.buf) % 8) {
        PyErr_SetString(PyExc_ValueError, "queries must be aligned (q, n_words) uint64 words");
        goto done;
    }
    size_t nq = (size_t)qv.len / (8 * nw);
    if (k < 1 || (size_t)k > n) {
        PyErr_Format(PyExc_ValueError, "k must be in 1..%zu, got %zd", n, k);
        goto done;
    }
    if (get_buffer(idx_obj, &iv, 1, (Py_ssize_t)(nq * (size_t)k * 8), "out_idx") < 0) goto done;
    have_i = 1;
    if (get_buffer(dist_obj, &dv, 1, (Py_ssize_t)(nq * (size_t)k * 4), "out_dist") < 0)
        goto done;
    have_d = 1;
    if (nq == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    Job *job = (Job *)calloc(1, sizeof(Job));
    if (!job) {
        PyErr_NoMemory();
        goto done;
    }
    job->planes = pl.ptrs;
    job->nw = (int)nw;
    job->n = n;
    job->nq = nq;
    job->k = (size_t)k;
    job->queries = (const uint64_t *)qv.buf;
    job->topk = topk_kernel(isa);
    set_sizes(job, threads);
    threads = clamp_threads(threads, job->n_chunks);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_job(job, threads, (int64_t *)iv.buf, (int32_t *)dv.buf);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    if (have_d) PyBuffer_Release(&dv);
    if (have_i) PyBuffer_Release(&iv);
    if (have_q) PyBuffer_Release(&qv);
    planes_release(&pl);
    return result;
}

PyDoc_STRVAR(distances_doc,
             "distances(planes, queries, out, threads, isa)\n--\n\n"
             "Hamming distance of each query (uint64 (q, len(planes))) to every code, written "
             "into out (int32 (q, n)).");

static PyObject *py_distances(PyObject *self, PyObject *args) {
    PyObject *planes_obj, *q_obj, *out_obj;
    int threads, isa;
    if (!PyArg_ParseTuple(args, "OOOii", &planes_obj, &q_obj, &out_obj, &threads, &isa))
        return NULL;
    if (check_isa(isa) < 0) return NULL;
    Planes pl;
    size_t n;
    if (planes_get(planes_obj, &pl, &n) < 0) return NULL;
    Py_buffer qv, ov;
    int have_q = 0, have_o = 0;
    PyObject *result = NULL;
    size_t nw = (size_t)pl.count;
    if (PyObject_GetBuffer(q_obj, &qv, PyBUF_C_CONTIGUOUS) < 0) goto done;
    have_q = 1;
    if (qv.len % (Py_ssize_t)(8 * nw) || ((uintptr_t)qv.buf) % 8) {
        PyErr_SetString(PyExc_ValueError, "queries must be aligned (q, n_words) uint64 words");
        goto done;
    }
    size_t nq = (size_t)qv.len / (8 * nw);
    if (get_buffer(out_obj, &ov, 1, (Py_ssize_t)(nq * n * 4), "out") < 0) goto done;
    have_o = 1;
    if (nq == 0 || n == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    Job *job = (Job *)calloc(1, sizeof(Job));
    if (!job) {
        PyErr_NoMemory();
        goto done;
    }
    job->planes = pl.ptrs;
    job->nw = (int)nw;
    job->n = n;
    job->nq = nq;
    job->queries = (const uint64_t *)qv.buf;
    job->dist_out = (int32_t *)ov.buf;
    job->dist = dist_kernel(isa);
    set_sizes(job, threads);
    threads = clamp_threads(threads, job->n_chunks);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_job(job, threads, NULL, NULL);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    if (have_o) PyBuffer_Release(&ov);
    if (have_q) PyBuffer_Release(&qv);
    planes_release(&pl);
    return result;
}

PyDoc_STRVAR(histogram_doc,
             "histogram(distances, hits, counts, hit_counts)\n--\n\n"
             "Per row of distances (int32 (q, n)) and hits (bool (q, n)): how many of the row's "
             "entries lie at each distance, into counts (int64 (q, width)), and how many of those "
             "are hits, into hit_counts (int64 (q, width)); both are added to, so pass zeros. "
             "hits and hit_counts may both be None: the counts alone (the k-th distance). "
             "Every distance must lie in 0..width-1 (ValueError otherwise).");

static PyObject *py_histogram(PyObject *self, PyObject *args) {
    PyObject *d_obj, *h_obj, *c_obj, *hc_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &d_obj, &h_obj, &c_obj, &hc_obj)) return NULL;
    Py_buffer dv, hv, cv, hcv;
    int have_d = 0, have_h = 0, have_c = 0, have_hc = 0;
    PyObject *result = NULL;
    if (PyObject_GetBuffer(d_obj, &dv, PyBUF_C_CONTIGUOUS) < 0) goto done;
    have_d = 1;
    int with_hits = h_obj != Py_None;
    if (with_hits != (hc_obj != Py_None)) {
        PyErr_SetString(PyExc_ValueError, "histogram: hits and hit_counts are both None or neither");
        goto done;
    }
    if (with_hits) {
        if (PyObject_GetBuffer(h_obj, &hv, PyBUF_C_CONTIGUOUS) < 0) goto done;
        have_h = 1;
    }
    if (PyObject_GetBuffer(c_obj, &cv, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto done;
    have_c = 1;
    if (with_hits) {
        if (PyObject_GetBuffer(hc_obj, &hcv, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto done;
        have_hc = 1;
    }
    size_t entries = (size_t)dv.len / 4;
    /* counts' length is q × width: q is the rows of distances, given by the caller's shapes. */
    if (dv.len % 4 || cv.len % 8 || ((uintptr_t)dv.buf) % 4 || ((uintptr_t)cv.buf) % 8 ||
        (with_hits &&
         ((size_t)hv.len != entries || cv.len != hcv.len || ((uintptr_t)hcv.buf) % 8))) {
        PyErr_SetString(PyExc_ValueError,
                        "histogram: distances int32 (q, n), hits bool (q, n), counts and "
                        "hit_counts int64 (q, width), all C-contiguous and aligned");
        goto done;
    }
    Py_ssize_t q = PyObject_Length(d_obj);
    if (q < 0) goto done;
    size_t cells = (size_t)cv.len / 8;
    if (q == 0 || entries == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (entries % (size_t)q || cells % (size_t)q) {
        PyErr_SetString(PyExc_ValueError, "histogram: rows of distances and counts differ");
        goto done;
    }
    size_t n = entries / (size_t)q, width = cells / (size_t)q;
    const int32_t *dist = (const int32_t *)dv.buf;
    const uint8_t *hit = with_hits ? (const uint8_t *)hv.buf : NULL;
    int64_t *counts = (int64_t *)cv.buf, *hit_counts = with_hits ? (int64_t *)hcv.buf : NULL;
    int out_of_range = 0;
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < (size_t)q && !out_of_range; i++) {
        const int32_t *d = dist + i * n;
        const uint8_t *h = hit ? hit + i * n : NULL;
        int64_t *c = counts + i * width, *hc = hit ? hit_counts + i * width : NULL;
        for (size_t j = 0; j < n; j++) {
            uint32_t v = (uint32_t)d[j]; /* negatives wrap to huge values: out of range */
            if (v >= width) {
                out_of_range = 1;
                break;
            }
            c[v] += 1;
            if (h) hc[v] += h[j] != 0; /* the same branch every time: predicted */
        }
    }
    Py_END_ALLOW_THREADS
    if (out_of_range) {
        PyErr_Format(PyExc_ValueError, "histogram: a distance outside 0..%zu", width - 1);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    if (have_hc) PyBuffer_Release(&hcv);
    if (have_c) PyBuffer_Release(&cv);
    if (have_h) PyBuffer_Release(&hv);
    if (have_d) PyBuffer_Release(&dv);
    return result;
}

static PyMethodDef methods[] = {
    {"topk", py_topk, METH_VARARGS, topk_doc},
    {"distances", py_distances, METH_VARARGS, distances_doc},
    {"histogram", py_histogram, METH_VARARGS, histogram_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hamming",
    "Compiled Hamming top-k and distances over bit planes (see nashcli.search), and the "
    "per-distance histograms of precision@k (see nashcli.metrics).", -1, methods,
};

PyMODINIT_FUNC PyInit__hamming(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    /* ISAS: the instruction sets this CPU can run, as {name: number}, best last. */
    PyObject *isas = PyDict_New();
    if (!isas) goto fail;
    for (int isa = 0; isa < N_ISAS; isa++) {
        if (!isa_available(isa)) continue;
        PyObject *v = PyLong_FromLong(isa);
        if (!v || PyDict_SetItemString(isas, ISA_NAMES[isa], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(isas);
            goto fail;
        }
        Py_DECREF(v);
    }
    if (PyModule_AddObject(m, "ISAS", isas) < 0) {
        Py_DECREF(isas);
        goto fail;
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
