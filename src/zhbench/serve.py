"""`zhbench serve`: an HTTP prediction service over any classifier or NER tagger the pipeline trained.

    zhbench serve --model fasttext_char            # models/<task>/fasttext_char
    zhbench serve --model backbones/char/bert      # models/<task>/backbones/char/bert
    curl -s 127.0.0.1:8000/predict -H 'content-type: application/json' \\
         -d '{"texts": ["中国女排夺得世界杯冠军"], "top_k": 3}'
    zhbench serve --model ner/cluener              # models/ner/cluener
    curl -s 127.0.0.1:8000/entities -H 'content-type: application/json' \\
         -d '{"texts": ["浙商银行企业信贷部叶老桂博士"]}'

Endpoints: POST /predict (a classifier) or POST /entities (an NER tagger: each text's entities,
decoded as `zhbench predict` and the evaluate_ner stage decode them), GET /health, GET /labels (the
label names, or the entity types), and the OpenAPI description at /openapi.json (browsable at /docs).

Why FastAPI + uvicorn (and not the write-up's Flask app): the request and response bodies are pydantic
models, so one declaration gives the validation (types, list and string lengths, unknown fields),
the 4xx answers that name the bad field, and the OpenAPI schema a client team can generate code
from; the limits below appear in that schema because the request model is built from them.
uvicorn is the ASGI server FastAPI is made for; inference runs in its thread pool.

Input rules (every violation is a 4xx with a message naming the field; never a 500):
- body must be JSON (`Content-Type: application/json`; else 415), valid JSON (else 400), an object
  with exactly the fields `texts` and optionally `top_k` (else 422);
- `texts`: 1..max_texts strings (default 64), each with a non-space character and at most
  max_chars characters (default 512). Over-long texts are REJECTED, not truncated: a label for a
  text the model only partly read would look like an answer about the whole text, and a caller
  who wants truncation can cut the title itself. (Transformer models still cut their token
  sequence at the max_len they were trained with, exactly as in training.)
- `top_k` (body or query; the body wins; classifiers only): 1..number of labels, default 3;
- bodies larger than the limits imply are refused with 413 before they are read, and a body must
  have a Content-Length (411 otherwise).

Preprocessing is `zhbench.text.segment` at the model's own granularity, joined by spaces: the
function the preprocess stage used to write the training files (see zhbench.predict).

Startup loads and warms the model BEFORE the port opens: a missing or corrupt model makes
`zhbench serve` print what is wrong and exit with status 2, so a supervisor never sees a port that
answers with errors. With --workers N each worker process loads the model once.
"""
# No `from __future__ import annotations`: FastAPI resolves an endpoint's string annotations in the
# module globals, and the request model is built per app inside create_app.
import argparse
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

from zhbench.ner_predict import EntityTagger
from zhbench.predict import ModelInfo, ModelLoadError, detect_kind, load_predictor
from zhbench.predictors import TextClassifier
from zhbench.provenance import head_commit
from zhbench.text import control_character, describe_control

log = logging.getLogger("zhbench.serve")

ENV_CONFIG = "ZHBENCH_SERVE_CONFIG"  # how the parent hands its config to worker processes


@dataclass
class ServeConfig:
    model_dir: str
    name: str | None = None          # shown in /health; default: the model's own name
    labels_file: str | None = None   # label names, for kinds whose dir holds none (fastText)
    metrics_file: str | None = None  # quality metrics JSON shown in /health (optional)
    stopwords_file: str | None = None  # only if the word splits were preprocessed with stop-word removal
    max_texts: int = 64
    max_chars: int = 512
    default_top_k: int = 3
    threads: int = 1                 # torch intra-op threads per worker


# --------------------------------------------------------------------------------------------------
# Loading (everything that can fail happens here, before any port is opened)


@dataclass
class Service:
    model: TextClassifier | EntityTagger
    info: ModelInfo
    config: ServeConfig
    version: str
    git_commit: str
    metrics: dict[str, Any] | None


def zhbench_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zhbench")
    except PackageNotFoundError:
        return "unknown"


def metrics_summary(path: str | os.PathLike | None) -> dict[str, Any] | None:
    """accuracy and macro F1 per split from an evaluate stage's metrics JSON; None if absent."""
    if not path or not Path(path).is_file():
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        log.warning("%s: metrics not shown in /health, cannot read them (%s)", path, err)
        return None
    summary: dict[str, Any] = {"source": str(path)}
    if isinstance(data, dict) and "per_entity" in data:  # evaluate_ner's: entity-level scores on one split
        summary[str(data.get("eval_split"))] = {k: data.get(k) for k in ("precision", "recall", "f1")}
        return summary
    for split in ("dev", "test"):
        report = data.get(split) if isinstance(data, dict) else None
        if isinstance(report, dict):
            macro = report.get("macro") if isinstance(report.get("macro"), dict) else {}
            summary[split] = {"accuracy": report.get("accuracy"), "macro_f1": macro.get("f1")}
    return summary


def load_service(config: ServeConfig) -> Service:
    """Load, check and warm up the model; raises ModelLoadError with a message fit for a user."""
    if Path(config.model_dir).is_dir() and detect_kind(Path(config.model_dir)) == "ner":
        return load_tagger_service(config)
    labels = None
    if config.labels_file:
        from zhbench.data.thucnews import read_labels

        if not Path(config.labels_file).is_file():
            raise ModelLoadError(f"{config.labels_file}: label names file not found (run the preprocess stage, or give --labels)")
        try:
            labels = read_labels(config.labels_file)
        except ValueError as err:
            raise ModelLoadError(str(err)) from err
    stopwords: frozenset[str] = frozenset()
    if config.stopwords_file:
        from zhbench.preprocess import load_stopwords

        stopwords = load_stopwords(config.stopwords_file)
    predictor, info = load_predictor(config.model_dir, labels)
    classifier = TextClassifier(predictor, stopwords)
    if "torch" in sys.modules:  # only torch models need it; fastText serving never imports torch
        sys.modules["torch"].set_num_threads(config.threads)
    if not 1 <= config.default_top_k <= len(classifier.labels):
        raise ModelLoadError(f"--top-k {config.default_top_k}: expected 1..{len(classifier.labels)} (the number of labels)")
    try:  # a model that loads but cannot predict (shape mismatch, bad vocab) must fail here, not per request
        classifier.predict(["预热 warm-up 1"], k=1)
    except Exception as err:
        raise ModelLoadError(f"{config.model_dir}: the model loaded but cannot predict: {type(err).__name__}: {err}") from err
    if config.name:
        info.name = config.name
    return Service(classifier, info, config, zhbench_version(), head_commit(), metrics_summary(config.metrics_file))


def load_tagger_service(config: ServeConfig) -> Service:
    tagger = EntityTagger(config.model_dir)
    sys.modules["torch"].set_num_threads(config.threads)
    try:
        tagger.entities(["预热 warm-up 1"])
    except Exception as err:
        raise ModelLoadError(f"{config.model_dir}: the model loaded but cannot tag: {type(err).__name__}: {err}") from err
    info = ModelInfo(kind="ner", model_dir=config.model_dir, name=config.name or f"ner/{tagger.variant}")
    return Service(tagger, info, config, zhbench_version(), head_commit(), metrics_summary(config.metrics_file))


# --------------------------------------------------------------------------------------------------
# The HTTP app


def create_app(service: Service):
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import AfterValidator, BaseModel, Field, StrictStr

    cfg = service.config
    model = service.model
    tagging = isinstance(model, EntityTagger)
    names = model.labels  # a tagger's are its entity types
    # Worst case per character is a 6-byte JSON escape (\uXXXX); the rest is a generous allowance.
    max_body = cfg.max_texts * (cfg.max_chars * 6 + 8) + 4096

    Text = Annotated[StrictStr, Field(min_length=1, max_length=cfg.max_chars)]
    Texts = Annotated[list[Text], Field(min_length=1, max_length=cfg.max_texts, description=(
        f"1..{cfg.max_texts} raw texts, each 1..{cfg.max_chars} characters with a non-space "
        "character; longer texts are rejected, not truncated")), AfterValidator(_plain_texts)]

    class LabelEntry(BaseModel):
        label_id: int
        label: str

    class Labels(BaseModel):
        labels: list[LabelEntry] = Field(description="every label (entity type, for an NER tagger), in id order")

    class Limits(BaseModel):
        max_texts: int
        max_chars: int
        default_top_k: int

    class Health(BaseModel):
        status: str
        model: str
        kind: str
        model_dir: str
        granularity: str
        num_labels: int
        version: str
        git_commit: str
        metrics: dict[str, Any] | None = Field(description="the loaded model's quality from its metrics JSON, if present "
                                                           "(accuracy / macro F1, or entity P/R/F1)")
        limits: Limits

    class Error(BaseModel):
        detail: str
        errors: list[dict[str, Any]] | None = None

    errors = {code: {"model": Error} for code in (400, 411, 413, 415, 422)}
    task = "named-entity recognition" if tagging else "text classification"
    app = FastAPI(title="zhbench prediction service", version=service.version,
                  description=f"Chinese {task} with the {service.info.kind} model "
                              f"{service.info.name!r} ({model.granularity} granularity).")
    app.state.service = service

    @app.middleware("http")
    async def check_body(request: Request, call_next):
        # Content type and size are checked before the body is read (bounded memory per request).
        if request.method == "POST":
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
                return JSONResponse(status_code=415, content={
                    "detail": f"expected Content-Type: application/json, found {media or 'none'}"})
            length = request.headers.get("content-length")
            if length is None:
                return JSONResponse(status_code=411, content={"detail": "a Content-Length header is required"})
            if not length.isdigit() or int(length) > max_body:
                return JSONResponse(status_code=413, content={
                    "detail": f"body of {length} bytes exceeds the {max_body}-byte limit "
                              f"({cfg.max_texts} texts of {cfg.max_chars} characters)"})
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        for e in errs:
            if e.get("type") == "json_invalid":
                pos = e["loc"][-1] if e.get("loc") else "?"
                return JSONResponse(status_code=400, content={
                    "detail": f"invalid JSON at character {pos}: {(e.get('ctx') or {}).get('error', e.get('msg'))}"})
        listed = [{"loc": _where(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errs]
        return JSONResponse(status_code=422, content={
            "detail": "; ".join(f"{e['loc']}: {e['msg']}" for e in listed), "errors": listed})

    if tagging:
        _add_entity_route(app, service, Texts, errors)
    else:
        _add_predict_route(app, service, Texts, errors)

    @app.get("/health", response_model=Health, summary="Model, version, commit and quality of what is served")
    def health():
        return {"status": "ok", "model": service.info.name, "kind": service.info.kind,
                "model_dir": service.info.model_dir, "granularity": model.granularity, "num_labels": len(names),
                "version": service.version, "git_commit": service.git_commit, "metrics": service.metrics,
                "limits": {"max_texts": cfg.max_texts, "max_chars": cfg.max_chars, "default_top_k": cfg.default_top_k}}

    @app.get("/labels", response_model=Labels, summary="Label names (entity types, for an NER tagger) in id order")
    def labels():
        return {"labels": [{"label_id": i, "label": name} for i, name in enumerate(names)]}

    return app


def _add_entity_route(app, service: Service, Texts, errors) -> None:
    """POST /entities of an NER tagger."""
    from pydantic import BaseModel, ConfigDict, Field

    tagger = service.model

    class EntitiesRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", json_schema_extra={
            "examples": [{"texts": ["浙商银行企业信贷部叶老桂博士", "张三在北京工作"]}]})

        texts: Texts

    class Entity(BaseModel):
        text: str
        type: str = Field(description="the entity type, one of GET /labels")
        start: int = Field(description="index of the entity's first character in the text, from 0")
        end: int = Field(description="index of its last character (inclusive, as CLUENER counts)")

    class TextEntities(BaseModel):
        text: str
        entities: list[Entity] = Field(description="in reading order")

    class EntitiesResponse(BaseModel):
        model: str
        results: list[TextEntities] = Field(description="one per input text, in input order")

    @app.post("/entities", response_model=EntitiesResponse, responses=errors,
              summary="Find the named entities of a batch of texts")
    def entities(body: EntitiesRequest):
        found = tagger.entities(body.texts)  # one batched model call for the whole request
        return {"model": service.info.name,
                "results": [{"text": t, "entities": e} for t, e in zip(body.texts, found)]}


def _add_predict_route(app, service: Service, Texts, errors) -> None:
    """POST /predict of a classifier."""
    from fastapi import Query
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, StrictInt

    cfg, clf, n_labels = service.config, service.model, len(service.model.labels)
    TopK = Annotated[StrictInt, Field(ge=1, le=n_labels, description=f"how many labels to rank, 1..{n_labels}")]

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", json_schema_extra={
            "examples": [{"texts": ["中国女排夺得世界杯冠军", "央行下调存款准备金率"], "top_k": 3}]})

        texts: Texts
        top_k: TopK | None = None

    class LabelScore(BaseModel):
        label_id: int
        label: str
        probability: float

    class TextPrediction(BaseModel):
        label_id: int = Field(description="the most probable label's id (its line in labels.txt, from 0)")
        label: str
        probability: float
        top_k: list[LabelScore] = Field(description="the k most probable labels, most probable first")

    class PredictResponse(BaseModel):
        model: str
        predictions: list[TextPrediction] = Field(description="one per input text, in input order")

    @app.post("/predict", response_model=PredictResponse, responses=errors,
              summary="Classify a batch of titles")
    def predict(body: PredictRequest,
                top_k: Annotated[int | None, Query(ge=1, le=n_labels,
                                                   description="top-k; the body's top_k wins")] = None):
        k = body.top_k or top_k or cfg.default_top_k
        token_strings = [clf.tokens(t) for t in body.texts]
        empty = [i for i, t in enumerate(token_strings) if not t]
        if empty:
            return JSONResponse(status_code=422, content={
                "detail": f"texts {empty}: no tokens left after {clf.granularity} segmentation (only stop words?)"})
        preds = clf.predict_tokens(token_strings, k)  # one batched model call for the whole request
        return {"model": service.info.name, "predictions": [
            {"label_id": p.label_id, "label": p.label, "probability": p.probability,
             "top_k": [{"label_id": i, "label": name, "probability": pr} for i, name, pr in p.top_k]}
            for p in preds]}


def _plain_texts(texts: list[str]) -> list[str]:
    blank = [i for i, t in enumerate(texts) if not t.strip()]
    if blank:
        raise ValueError(f"texts {blank} hold only white space; every text needs a non-space character")
    for i, t in enumerate(texts):
        control = control_character(t)
        if control:
            raise ValueError(f"texts[{i}] holds a {describe_control(control)}; send plain text")
    return texts


def _where(loc) -> str:
    """("body", "texts", 2) -> "texts[2]"; ("query", "top_k") -> "query top_k"."""
    parts = list(loc)
    prefix = ""
    if parts and parts[0] == "body":
        parts = parts[1:]
    elif parts and parts[0] == "query":
        prefix, parts = "query ", parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return prefix + (out or "body")


def create_app_from_env():
    """uvicorn factory for --workers > 1: each worker process loads the model once."""
    config = ServeConfig(**json.loads(os.environ[ENV_CONFIG]))
    return create_app(load_service(config))


# --------------------------------------------------------------------------------------------------
# Command line


def metrics_file_for(model_dir: Path, models_root: str | os.PathLike, task: str) -> Path | None:
    """The evaluate stage's metrics JSON of a pipeline model, if it has one: metrics/<task>/ mirrors
    models/<task>/ (models/thucnews10/fasttext_char -> metrics/thucnews10/fasttext_char.json)."""
    try:
        rel = Path(model_dir).resolve().relative_to((Path(models_root) / task).resolve())
    except ValueError:
        return None
    candidate = Path("metrics") / task / f"{rel}.json"
    return candidate if candidate.is_file() else None


def resolve_model_dir(model: str, models_root: str | os.PathLike, task: str) -> Path:
    """--model NAME -> its dir: models/<task>/NAME, then models/<task>/backbones/NAME.

    NAME is a baseline (fasttext_char), or granularity/backbone (char/bert) or backbones/char/bert;
    ner/<variant> is the NER tagger models/ner/<variant>, whatever the task.
    """
    if model.startswith("ner/"):
        tagger_dir = Path(models_root) / model
        if tagger_dir.is_dir():
            return tagger_dir
        trained = sorted(f"ner/{p.name}" for p in (Path(models_root) / "ner").glob("*") if p.is_dir())
        raise ModelLoadError(f"model {model!r}: no dir {tagger_dir}. Trained NER models: "
                             f"{trained or 'none (run train_ner first)'}")
    base = Path(models_root) / task
    for candidate in (base / model, base / "backbones" / model):
        if candidate.is_dir():
            return candidate
    hint = ""
    if "/" not in model and (base / "backbones").is_dir():
        found = sorted(str(p.relative_to(base)) for p in (base / "backbones").glob(f"*/{model}") if p.is_dir())
        if found:
            hint = f"; did you mean {' or '.join(found)}?"
    trained = sorted(str(p.relative_to(base)) for p in base.glob("*") if p.is_dir() and p.name != "backbones") if base.is_dir() else []
    trained += sorted(str(p.relative_to(base)) for p in base.glob("backbones/*/*") if p.is_dir())
    raise ModelLoadError(f"model {model!r}: no dir {base / model} or {base / 'backbones' / model}{hint}. "
                         f"Trained models under {base}: {trained or 'none (run the pipeline first)'}")


def add_serve_subparser(subparsers) -> argparse.ArgumentParser:
    """Register `zhbench serve` on the CLI's subparsers (cli.py calls this)."""
    p = subparsers.add_parser("serve", help="serve a trained model over HTTP (POST /predict, or /entities for NER)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="trained model name: a baseline (fasttext_char), char/<backbone>, word/<backbone>, "
                       "or ner/<variant> (an NER tagger: POST /entities)")
    which.add_argument("--model-dir", help="a model dir given directly instead of --model")
    p.add_argument("--task", help="task whose models/data/metrics to use (default: the one params.yaml names)")
    p.add_argument("--models-root", default="models", help="pipeline models dir (default: models)")
    p.add_argument("--labels", help="label names file (default: data/processed/<task>/labels.txt when it exists)")
    p.add_argument("--metrics", help="metrics JSON to show in /health (default: metrics/<task>/<model>.json when it exists)")
    p.add_argument("--stopwords", help="stop-word list, only if the word splits were made with remove_stopwords: true")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes, each with its own copy of the model (default: 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default: 1)")
    p.add_argument("--max-texts", type=int, default=64, help="most texts per request (default: 64)")
    p.add_argument("--max-chars", type=int, default=512, help="longest text in characters; longer ones are rejected (default: 512)")
    p.add_argument("--top-k", type=int, default=3, help="labels ranked per text unless a request says otherwise (default: 3)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)
    return p


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    if (args.model or "").startswith("ner/"):
        args.task = "ner"  # models/ner/<variant> and metrics/ner/<variant>.json, whatever the task
    elif args.task is None:
        from zhbench.layout import configured_task

        args.task = configured_task()
    for flag in ("max_texts", "max_chars", "workers", "threads", "top_k"):
        if getattr(args, flag) < 1:
            raise ModelLoadError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if args.model_dir:
        model_dir = Path(args.model_dir)
    else:
        model_dir = resolve_model_dir(args.model, args.models_root, args.task)
    labels = args.labels
    if labels is None and (Path("data/processed") / args.task / "labels.txt").is_file():
        labels = str(Path("data/processed") / args.task / "labels.txt")
    metrics = args.metrics
    if metrics is None:
        found = metrics_file_for(model_dir, args.models_root, args.task)
        metrics = str(found) if found else None
    return ServeConfig(model_dir=str(model_dir), labels_file=labels, metrics_file=metrics,
                       stopwords_file=args.stopwords, max_texts=args.max_texts, max_chars=args.max_chars,
                       default_top_k=args.top_k, threads=args.threads)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        service = load_service(config)  # before any socket exists: a bad model never opens the port
    except ModelLoadError as err:
        print(f"zhbench serve: error: {err}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the service is reachable from other machines; it has no authentication", args.host)
    info = service.info
    log.info("serving %s model %s (%s, %d labels) from %s on http://%s:%d", info.kind, info.name,
             service.model.granularity, len(service.model.labels), info.model_dir, args.host, args.port)
    if args.workers == 1:
        uvicorn.run(create_app(service), host=args.host, port=args.port, log_level=args.log_level)
    else:
        del service  # checked; each worker loads its own copy
        os.environ[ENV_CONFIG] = json.dumps(asdict(config))
        uvicorn.run("zhbench.serve:create_app_from_env", factory=True, workers=args.workers,
                    host=args.host, port=args.port, log_level=args.log_level)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zhbench")
    add_serve_subparser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
