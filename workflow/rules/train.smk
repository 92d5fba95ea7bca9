# Classification: one training job per (dataset, model, grid point), MLflow-tracked;
# a grid summary per dataset; evaluation of each model's best point on the test split.


rule train:
    input:
        train=train_file("train"),
        val=train_file("val"),
        manifest=train_manifests,
        weights=train_weights,
    output:
        model="results/train/{dataset}/{model}/{point}/model.keras",
        metrics="results/train/{dataset}/{model}/{point}/metrics.json",
        history="results/train/{dataset}/{model}/{point}/history.json",
        curves=report(
            "results/train/{dataset}/{model}/{point}/curves.png",
            caption="../report/train_curves.rst",
            category="Training",
            subcategory="{dataset}",
            labels={"model": "{model}", "grid point": "{point}", "figure": "curves"},
        ),
        confusion="results/train/{dataset}/{model}/{point}/val_confusion.png",
    log:
        "results/logs/train/{dataset}/{model}/{point}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{model}/{point}.tsv"
    conda:
        ENV_GPU if GPU["enabled"] else ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RESOURCES,
    params:
        job=train_job,
    script:
        "../scripts/train.py"


rule calibrate:
    input:
        model="results/train/{dataset}/{model}/{point}/model.keras",
        metrics="results/train/{dataset}/{model}/{point}/metrics.json",
        val=train_file("val"),
        manifest=train_manifests,
    output:
        calibration="results/train/{dataset}/{model}/{point}/calibration.json",
        reliability=report(
            "results/train/{dataset}/{model}/{point}/reliability.png",
            caption="../report/reliability.rst",
            category="Training",
            subcategory="{dataset}",
            labels={
                "model": "{model}",
                "grid point": "{point}",
                "figure": "reliability",
            },
        ),
        review="results/train/{dataset}/{model}/{point}/val_review.png",
    log:
        "results/logs/calibrate/{dataset}/{model}/{point}.log",
    conda:
        ENV
    threads: TRAIN_THREADS
    params:
        call=config["evaluate"]["call"],
        tta=config["evaluate"]["tta"],
        seed=SEED,
        tracking=TRACKING,
    script:
        "../scripts/calibrate.py"


rule grid_summary:
    input:
        metrics=grid_metrics,
    output:
        table="results/train/{dataset}/grid.csv",
        best="results/train/{dataset}/best.json",
        plot=report(
            "results/train/{dataset}/grid.png",
            caption="../report/grid.rst",
            category="Training",
            subcategory="{dataset}",
            labels={"model": "all", "grid point": "all", "figure": "grid search"},
        ),
    log:
        "results/logs/grid_summary/{dataset}.log",
    conda:
        ENV
    params:
        select_by=TRAIN["select_by"],
    script:
        "../scripts/grid_summary.py"


rule evaluate:
    input:
        grid="results/train/{dataset}/grid.csv",
        models=model_files,
        calibrations=calibration_files,
        test=train_file("test"),
        manifest=train_manifests,
    output:
        metrics="results/evaluate/{dataset}/{model}/metrics.json",
        per_class="results/evaluate/{dataset}/{model}/per_class.csv",
        cells="results/evaluate/{dataset}/{model}/cells.csv",
        cases="results/evaluate/{dataset}/{model}/cases.csv",
        reliability=report(
            "results/evaluate/{dataset}/{model}/reliability.png",
            caption="../report/reliability.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "reliability (test)"},
        ),
        review=report(
            "results/evaluate/{dataset}/{model}/review.png",
            caption="../report/review.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "review trade-off"},
        ),
        confusion=report(
            "results/evaluate/{dataset}/{model}/confusion.png",
            caption="../report/confusion.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "confusion matrix"},
        ),
    log:
        "results/logs/evaluate/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{model}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    params:
        job=evaluate_job,
    script:
        "../scripts/evaluate.py"


rule evaluate_external:
    input:
        grid="results/train/{dataset}/grid.csv",
        models=model_files,
        calibrations=calibration_files,
        test=external_file,
        manifest=manifest_path("{external}"),
    output:
        metrics="results/evaluate/{dataset}/{model}/external/{external}/metrics.json",
        per_class="results/evaluate/{dataset}/{model}/external/{external}/per_class.csv",
        cells="results/evaluate/{dataset}/{model}/external/{external}/cells.csv",
        cases="results/evaluate/{dataset}/{model}/external/{external}/cases.csv",
        reliability="results/evaluate/{dataset}/{model}/external/{external}/reliability.png",
        review="results/evaluate/{dataset}/{model}/external/{external}/review.png",
        confusion="results/evaluate/{dataset}/{model}/external/{external}/confusion.png",
    log:
        "results/logs/evaluate_external/{dataset}/{model}/{external}.log",
    benchmark:
        "results/benchmarks/evaluate_external/{dataset}/{model}/{external}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    params:
        job=external_job,
    script:
        "../scripts/evaluate.py"


rule external_summary:
    input:
        own=lambda wildcards: expand(
            "results/evaluate/{dataset}/{model}/metrics.json",
            dataset=wildcards.dataset,
            model=TRAIN["models"],
        ),
        external=lambda wildcards: external_outputs(wildcards.dataset),
    output:
        table="results/evaluate/{dataset}/external.csv",
        plot=report(
            "results/evaluate/{dataset}/external.png",
            caption="../report/external.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"model": "all", "figure": "external test sets"},
        ),
    log:
        "results/logs/external_summary/{dataset}.log",
    conda:
        ENV
    script:
        "../scripts/external_summary.py"


rule learning_curve:
    input:
        metrics=curve_metrics,
    output:
        table="results/curves/{dataset}.csv",
        plot=report(
            "results/curves/{dataset}.png",
            caption="../report/learning_curve.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"model": "all", "figure": "learning curve"},
        ),
    log:
        "results/logs/learning_curve/{dataset}.log",
    conda:
        ENV
    params:
        entries=curve_entries,
    script:
        "../scripts/learning_curve.py"
