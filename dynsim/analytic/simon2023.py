r"""Simon et al. (2023), linear Barlow Twins: closed forms of the stepwise dynamics (`docs/theory/simon2023.md`).

The model: embedding $z = Wx$ ($W$ is $d\times n$), the symmetrised cross-view moment $\Gamma = \mathrm{sym}\,
E[x_1x_2^\top]$ with eigenpairs $(\gamma_j, v_j)$, descending, and the loss $\Vert W\Gamma W^\top - I\Vert_F^2$
([`BarlowTwins`][dynsim.components.BarlowTwins] with off-diagonal weight 1). Its gradient flow is
$\dot W = -4(W\Gamma W^\top - I)W\Gamma$ ([eq. flow](../theory/simon2023.md#flow)). From an aligned start
$W(0) = US_0V_d^\top$ the singular values move alone ([closed form](../theory/simon2023.md#closed-form)):

$$
\dot s_j = 4\gamma_js_j(1 - \gamma_js_j^2),\qquad s_j(t)^2 = \frac{1}{\gamma_j + (s_j(0)^{-2} - \gamma_j)e^{-8\gamma_jt}},
$$

so the eigenvalues $\lambda_j = \gamma_js_j^2$ of $C = W\Gamma W^\top$ are logistic,
$\lambda_j(t) = 1/(1 + (1/\lambda_j(0) - 1)e^{-8\gamma_jt})$, each reaches ½ at the step time
$t_j = \ln(1/\lambda_j(0) - 1)/(8\gamma_j)$, and $s_j \to \gamma_j^{-1/2}$. The loss along the way is
$\sum_j(1 - \lambda_j)^2$: plateaus at $d - k$ between the steps.

From a generic small start $W(0) = \alpha Z$ ($\alpha\to0$) the modes are learned one at a time in the order of
$\gamma_j$, each from the part of $W(0)v_j$ orthogonal to the earlier ones: the effective start is $|R_{jj}|$ of the
QR factorisation $W(0)V_d = QR$ ([effective start](../theory/simon2023.md#effective-start)).

On the features of a kernel the modes come from the Gram matrix of the pairs' views alone
([`kernel_modes`][dynsim.analytic.simon2023.kernel_modes], [kernel form](../theory/simon2023.md#kernel)).
"""

from __future__ import annotations

import numpy as np


def singular_values(s0, gamma, t):
    r"""$s_j(t)$ from an aligned start (module docstring); `s0`, `gamma` `(d,)`, `t` scalar or `(T,)` (then
    `(T, d)`). Exact for every $s_j(0) > 0$ and $\gamma_j > 0$; the form used does not overflow."""
    s0, gamma = np.asarray(s0, float), np.asarray(gamma, float)
    t = np.asarray(t, float)[..., None]
    return 1.0 / np.sqrt(gamma + (s0**-2.0 - gamma) * np.exp(-8.0 * gamma * t))


def embedding_eigenvalues(lam0, gamma, t):
    r"""The logistic $\lambda_j(t)$ of $C = W\Gamma W^\top$ from $\lambda_j(0)$ (module docstring), `(T, d)` for
    `(T,)` times."""
    lam0, gamma = np.asarray(lam0, float), np.asarray(gamma, float)
    t = np.asarray(t, float)[..., None]
    return 1.0 / (1.0 + (1.0 / lam0 - 1.0) * np.exp(-8.0 * gamma * t))


def step_times(lam0, gamma):
    r"""The times at which each $\lambda_j$ reaches ½: $t_j = \ln(1/\lambda_j(0) - 1)/(8\gamma_j)$ (negative for a
    mode that starts above ½)."""
    lam0, gamma = np.asarray(lam0, float), np.asarray(gamma, float)
    return np.log(1.0 / lam0 - 1.0) / (8.0 * gamma)


def loss(lam):
    r"""$\Vert C - I\Vert_F^2 = \sum_j(1 - \lambda_j)^2$ for a diagonal $C$ (`(..., d)` eigenvalues)."""
    return np.sum((1.0 - np.asarray(lam, float)) ** 2, axis=-1)


def effective_start(W0, V):
    r"""The effective aligned start of a generic small $W(0)$: $|R_{jj}|$ of the QR factorisation of $W(0)V_d$, with
    `V` `(n, d)` the top-$d$ eigenvectors of $\Gamma$ (columns, by decreasing $\gamma$); returns `(d,)`. Its
    $\lambda_j(0) = \gamma_j R_{jj}^2$ give [`step_times`][dynsim.analytic.simon2023.step_times] and the logistic
    steps as $\alpha = \Vert W(0)\Vert\to0$."""
    R = np.linalg.qr(np.asarray(W0, float) @ np.asarray(V, float), mode="r")
    return np.abs(np.diag(R))


def final_weights(W0, V, gamma):
    r"""The limit $W(\infty) = Q\,\mathrm{sgn}(\mathrm{diag}\,R)\,\Lambda_d^{-1/2}V_d^\top$ of a generic small start
    ($W(0)V_d = QR$): the top-$d$ eigenvectors of $\Gamma$, whitened so that $C = I$, rotated by the start."""
    Q, R = np.linalg.qr(np.asarray(W0, float) @ np.asarray(V, float))
    signs = np.sign(np.diag(R))
    return (Q * signs) @ np.diag(np.asarray(gamma, float) ** -0.5) @ np.asarray(V, float).T


def kernel_modes(K, rtol: float = 1e-10):
    r"""The eigenmodes of $\Gamma$ for a linear model on the features of a kernel, from the Gram matrix alone
    ([kernel](../theory/simon2023.md#kernel)).

    `K` is the $2N\times2N$ kernel matrix of the views of $N$ positive pairs, ordered $(x_1, \dots, x_N, x'_1, \dots,
    x'_N)$ (sample $b$'s views at $b$ and $N + b$). In feature space $\Gamma = \Phi P\Phi^\top$ with $P$ the pairing
    matrix, $P_{b, N+b} = P_{N+b, b} = 1/(2N)$; its non-zero eigenvalues are those of $K^{1/2}PK^{1/2}$, with
    eigenfunctions $v_j(x) = k(x, X)\,c_j$, $c_j = K^{+1/2}u_j$. Returns `(gamma, coeff)`, all the non-zero
    eigenvalues by decreasing value and the `(2N, m)` coefficients; eigenvalues of $K$ below `rtol` times its largest
    count as zero (a Gram matrix of rank below $2N$)."""
    K = np.asarray(K, float)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] % 2:
        raise ValueError(f"K must be a square Gram matrix of 2N views (N pairs), got shape {K.shape}")
    if not np.allclose(K, K.T, rtol=1e-12, atol=1e-12 * np.max(np.abs(K))):
        raise ValueError("K must be symmetric (a kernel's Gram matrix)")
    n = K.shape[0] // 2
    k, Q = np.linalg.eigh(0.5 * (K + K.T))
    keep = k > rtol * k[-1]
    Q, k = Q[:, keep], k[keep]
    root = Q * np.sqrt(k)  # K^{1/2} restricted to its range, in the basis Q
    P = np.zeros_like(K)
    P[np.arange(n), n + np.arange(n)] = P[n + np.arange(n), np.arange(n)] = 0.5 / n
    M = root.T @ P @ root  # (r, r): the same non-zero spectrum as K^{1/2} P K^{1/2}
    gamma, u = np.linalg.eigh(0.5 * (M + M.T))
    order = np.argsort(gamma)[::-1]
    gamma, u = gamma[order], u[:, order]
    nonzero = np.abs(gamma) > rtol * max(np.max(np.abs(gamma)), 1e-300)
    coeff = (Q / np.sqrt(k)) @ u[:, nonzero]
    return gamma[nonzero], coeff


def kernel_embedding(k_x, coeff, s):
    r"""The embedding $f(x) = \mathrm{diag}(s)\,(v_1(x), \dots, v_d(x))$ of an aligned kernel model with strengths `s`
    `(..., d)` (e.g. [`singular_values`][dynsim.analytic.simon2023.singular_values] over time, or
    $\gamma_j^{-1/2}$ at the end), up to the output rotation $U$; `k_x` `(M, 2N)` holds $k(x, X)$ for `M` points.
    Returns `(..., M, d)`."""
    s = np.asarray(s, float)
    v = np.asarray(k_x, float) @ np.asarray(coeff, float)[:, : s.shape[-1]]
    return v * s[..., None, :]
