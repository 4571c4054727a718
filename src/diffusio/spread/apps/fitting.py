"""Fit diffusion curves to data: Bass (p, q, m) from sales, SIR (beta, gamma, I0) from incidence.

Both fits are nonlinear least squares (``scipy.optimize.least_squares``) with
confidence intervals from the Jacobian at the optimum (``cov = s^2 (J^T J)^-1``,
Student-t quantiles).  The Bass fit starts from Bass's (1969) ordinary least
squares estimate ``S_t = a + b Y_{t-1} + c Y_{t-1}^2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.integrate import solve_ivp

from diffusio.errors import UsageError
from diffusio.spread.params import check_number

_MIN_POINTS = 5  # three parameters need at least two residual degrees of freedom


@dataclass(frozen=True)
class CurveFit:
    """Result of :func:`fit_bass` or :func:`fit_sir`.

    Attributes
    ----------
    params : pandas.DataFrame
        index = parameter name; columns ``estimate``, ``lower``, ``upper``
        (confidence interval), ``std_error`` and ``start`` (the starting value).
    fitted : numpy.ndarray
        Model values at the observed periods.
    observed : numpy.ndarray
    kind : str
        ``"bass"`` or ``"sir"``.
    rmse : float
    extra : dict
        ``population`` and ``dt`` for SIR.
    """

    params: pd.DataFrame
    fitted: np.ndarray
    observed: np.ndarray
    kind: str
    rmse: float
    extra: dict

    def forecast(self, periods: int) -> np.ndarray:
        """Per-period model values for periods ``1 .. periods`` (sales for Bass, new cases for SIR)."""
        if periods < 1:
            raise UsageError(f"periods must be >= 1, got {periods}")
        est = self.params["estimate"]
        if self.kind == "bass":
            return bass_sales(est["p"], est["q"], est["m"], periods)
        return sir_incidence(est["beta"], est["gamma"], est["I0"], self.extra["population"], periods,
                             self.extra["dt"])


def bass_sales(p: float, q: float, m: float, periods: int) -> np.ndarray:
    """Expected adoptions in periods 1..periods: ``m (F(t) - F(t-1))`` with the closed-form Bass ``F``.

    Examples
    --------
    >>> bass_sales(0.03, 0.38, 1000, 40).sum().round(1)
    np.float64(1000.0)
    """
    t = np.arange(periods + 1, dtype=np.float64)
    e = np.exp(-(p + q) * t)
    cumulative = (1.0 - e) / (1.0 + (q / p) * e)
    return m * np.diff(cumulative)


def _series(values, name: str) -> np.ndarray:
    series = np.asarray(values, dtype=np.float64).ravel()
    if series.size < _MIN_POINTS:
        raise UsageError(f"{name} has {series.size} points; at least {_MIN_POINTS} are needed to fit 3 parameters")
    if not np.all(np.isfinite(series)) or series.min() < 0:
        raise UsageError(f"{name} must be finite and >= 0; remove NaN or negative values")
    if series.sum() <= 0:
        raise UsageError(f"{name} is all zeros; nothing to fit")
    return series


def bass_ols(sales) -> dict:
    """Bass's (1969) OLS estimate of p, q, m from per-period sales.

    Regresses ``S_t`` on ``Y_{t-1}`` and ``Y_{t-1}^2`` (``Y`` = cumulative sales
    before period t) and solves ``a = pm``, ``b = q - p``, ``c = -q/m``.

    Examples
    --------
    >>> est = bass_ols(bass_sales(0.02, 0.4, 5000, 12))   # discrete-time approximation: near, not exact
    >>> round(float(est["q"]), 2), bool(4500 < est["m"] < 5500)
    (0.4, True)
    """
    sales = _series(sales, "sales")
    before = np.concatenate([[0.0], np.cumsum(sales)[:-1]])
    design = np.column_stack([np.ones_like(before), before, before ** 2])
    (a, b, c), *_ = np.linalg.lstsq(design, sales, rcond=None)
    if c >= 0 or b * b - 4 * a * c < 0:
        return {"p": np.nan, "q": np.nan, "m": np.nan}
    m = (-b - np.sqrt(b * b - 4 * a * c)) / (2 * c)
    if m <= 0:
        m = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * c)
    return {"p": a / m, "q": -c * m, "m": m}


def _table(names, estimate, start, jacobian, residuals, confidence) -> tuple[pd.DataFrame, float]:
    dof = max(residuals.size - len(names), 1)
    s2 = float(residuals @ residuals) / dof
    try:
        cov = s2 * np.linalg.inv(jacobian.T @ jacobian)
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        se = np.full(len(names), np.nan)
    half = stats.t.ppf(0.5 + confidence / 2.0, dof) * se
    table = pd.DataFrame({"estimate": estimate, "lower": estimate - half, "upper": estimate + half,
                          "std_error": se, "start": start}, index=pd.Index(names, name="param"))
    return table, float(np.sqrt(np.mean(residuals ** 2)))


def fit_bass(sales, *, confidence: float = 0.95) -> CurveFit:
    """Fit the Bass model to per-period adoptions (sales of first purchases).

    Nonlinear least squares on ``m (F(t) - F(t-1))`` (Srinivasan & Mason 1986),
    started from :func:`bass_ols` (or a neutral start when OLS gives no valid
    root).  Periods are 1, 2, ... with adoption starting at time 0.

    Parameters
    ----------
    sales : sequence of float, at least 5 values
    confidence : float
        Level of the intervals in ``params``.

    Examples
    --------
    >>> fit = fit_bass(bass_sales(0.01, 0.45, 20000, 15))
    >>> fit.params.loc["q", "estimate"].round(3)
    np.float64(0.45)
    """
    check_number("confidence", confidence, 1e-9, 1 - 1e-9)
    sales = _series(sales, "sales")
    ols = bass_ols(sales)
    total = sales.sum()
    start = np.array([ols["p"], ols["q"], ols["m"]])
    if not (np.all(np.isfinite(start)) and start[0] > 0 and start[1] >= 0 and start[2] >= total):
        start = np.array([0.01, 0.3, 2.0 * total])
    start[0] = max(start[0], 1e-6)
    scale = np.array([1.0, 1.0, total])

    def residual(theta):
        p, q, m = theta * scale
        return bass_sales(p, q, m, sales.size) - sales

    result = optimize.least_squares(residual, start / scale, bounds=([1e-8, 0.0, 1e-9], [1.0, 5.0, np.inf]),
                                    x_scale="jac", method="trf")
    estimate = result.x * scale
    jacobian = result.jac / scale[None, :]
    table, rmse = _table(["p", "q", "m"], estimate, [ols["p"], ols["q"], ols["m"]], jacobian, result.fun,
                         confidence)
    return CurveFit(params=table, fitted=result.fun + sales, observed=sales, kind="bass", rmse=rmse, extra={})


def sir_incidence(beta: float, gamma: float, initial: float, population: float, periods: int,
                  dt: float = 1.0) -> np.ndarray:
    """New infections per period of the deterministic SIR ODE ``S' = -beta S I / N``, ``I' = beta S I / N - gamma I``.

    Examples
    --------
    >>> new = sir_incidence(0.5, 0.2, 10, 10000, 200)
    >>> bool(8850 < new.sum() < 8950)   # final size z = 1 - exp(-R0 z), R0 = 2.5: z = 0.893
    True
    """
    def rhs(_, y):
        s, i = y
        force = beta * s * i / population
        return [-force, force - gamma * i]

    times = np.arange(periods + 1) * dt
    solution = solve_ivp(rhs, (0.0, times[-1]), [population - initial, initial], t_eval=times, rtol=1e-8,
                         atol=1e-6, method="LSODA")
    return -np.diff(solution.y[0])


def fit_sir(incidence, population: float, *, dt: float = 1.0, confidence: float = 0.95) -> CurveFit:
    """Fit SIR ``beta``, ``gamma`` (rates per unit time) and initial infected ``I0`` to an incidence curve.

    Parameters
    ----------
    incidence : sequence of float, at least 5 values
        New infections in each period of length ``dt``, starting at time 0.
    population : float
        Size N of the population.

    Examples
    --------
    >>> new = sir_incidence(0.6, 0.25, 5, 5000, 60)
    >>> fit = fit_sir(new, 5000)
    >>> fit.params.loc[["beta", "gamma"], "estimate"].round(3).tolist()
    [0.6, 0.25]
    """
    check_number("confidence", confidence, 1e-9, 1 - 1e-9)
    population = check_number("population", population, 1e-9)
    dt = check_number("dt", dt, 1e-12)
    incidence = _series(incidence, "incidence")
    if incidence.sum() > population:
        raise UsageError(f"incidence sums to {incidence.sum():g} > population {population:g}; "
                         "pass new cases per period and the right population")
    periods = incidence.size
    # start: growth rate r from the early log-incidence slope, gamma from a generic 1/5 per unit time
    early = incidence[: max(3, int(np.argmax(incidence)) + 1)]
    positive = early > 0
    growth = np.polyfit(np.arange(early.size)[positive] * dt, np.log(early[positive]), 1)[0] if positive.sum() > 1 \
        else 0.1
    gamma0 = 0.2
    beta0 = max(growth, 0.01) + gamma0
    i0 = max(incidence[0] / (beta0 * dt), 1e-3)

    def residual(theta):
        beta, gamma, log_i0 = theta
        return sir_incidence(beta, gamma, np.exp(log_i0), population, periods, dt) - incidence

    start = np.array([beta0, gamma0, np.log(min(i0, population / 2))])
    result = optimize.least_squares(residual, start, bounds=([1e-6, 1e-6, np.log(1e-6)],
                                                             [50.0, 50.0, np.log(population)]), method="trf")
    beta, gamma, log_i0 = result.x
    # report I0 on its natural scale: delta method d I0 = I0 d log I0
    jacobian = result.jac.copy()
    jacobian[:, 2] /= np.exp(log_i0)
    table, rmse = _table(["beta", "gamma", "I0"], np.array([beta, gamma, np.exp(log_i0)]),
                         [start[0], start[1], np.exp(start[2])], jacobian, result.fun, confidence)
    return CurveFit(params=table, fitted=result.fun + incidence, observed=incidence, kind="sir", rmse=rmse,
                    extra={"population": population, "dt": dt})


def plot_fit(fit: CurveFit, path, *, horizon: int | None = None, start: float = 1, title: str | None = None):
    """Observed series, fitted curve and forecast up to ``horizon`` periods, written atomically to PNG.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = plot_fit(fit_bass(bass_sales(0.01, 0.4, 1000, 10)), pathlib.Path(tempfile.mkdtemp()) / "b.png", horizon=20)
    >>> out.stat().st_size > 0
    True
    """
    from diffusio.figures import figure, save

    horizon = max(int(horizon or 2 * fit.observed.size), fit.observed.size)
    periods = start + np.arange(horizon)
    with figure() as (fig, ax):
        ax.plot(periods[: fit.observed.size], fit.observed, "o", color="black", label="observed")
        ax.plot(periods, fit.forecast(horizon), "-", label="fitted / forecast")
        ax.axvline(periods[fit.observed.size - 1], color="grey", linestyle=":", linewidth=1)
        est = fit.params["estimate"]
        label = ", ".join(f"{name}={value:.4g}" for name, value in est.items())
        ax.set_title(title or f"{fit.kind.upper()} fit: {label}")
        ax.set_xlabel("period")
        ax.set_ylabel("adoptions per period" if fit.kind == "bass" else "new infections per period")
        ax.legend()
        return save(fig, path)
