# Classification: one training job per (dataset, model, grid point), MLflow-tracked;
# a grid summary per dataset; evaluation of each model's best point on the test split.


rule train:
    input:
        train=train_file("train"),
        val=train_file("val"),
        manifest=manifest_path("{dataset}"),
    output:
        model=f"{RESULTS}/train/{{dataset}}/{{model}}/{{point}}/model.keras",
        metrics=f"{RESULTS}/train/{{dataset}}/{{model}}/{{point}}/metrics.json",
        history=f"{RESULTS}/train/{{dataset}}/{{model}}/{{point}}/history.json",
        curves=report(
            f"{RESULTS}/train/{{dataset}}/{{model}}/{{point}}/curves.png",
            caption="../report/train_curves.rst",
            category="Training",
            subcategory="{dataset}",
            labels={"model": "{model}", "grid point": "{point}", "figure": "curves"},
        ),
        confusion=f"{RESULTS}/train/{{dataset}}/{{model}}/{{point}}/val_confusion.png",
    log:
        f"{RESULTS}/logs/train/{{dataset}}/{{model}}/{{point}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/{{model}}/{{point}}.tsv"
    conda:
        ENV_GPU if GPU["enabled"] else ENV
    threads: TRAIN_THREADS
    resources:
        **GPU_RESOURCES,
    params:
        job=train_job,
    script:
        "../scripts/train.py"


rule calibrate:
    input:
        model=f"{RESULTS}/train/{{dataset}}/{{model}}/{{point}}/model.keras",
        metrics=f"{RESULTS}/train/{{dataset}}/{{model}}/{{point}}/metrics.json",
        val=train_file("val"),
        manifest=manifest_path("{dataset}"),
    output:
        calibration=f"{RESULTS}/train/{{dataset}}/{{model}}/{{point}}/calibration.json",
        reliability=report(
            f"{RESULTS}/train/{{dataset}}/{{model}}/{{point}}/reliability.png",
            caption="../report/reliability.rst",
            category="Training",
            subcategory="{dataset}",
            labels={
                "model": "{model}",
                "grid point": "{point}",
                "figure": "reliability",
            },
        ),
        review=f"{RESULTS}/train/{{dataset}}/{{model}}/{{point}}/val_review.png",
    log:
        f"{RESULTS}/logs/calibrate/{{dataset}}/{{model}}/{{point}}.log",
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
        table=f"{RESULTS}/train/{{dataset}}/grid.csv",
        best=f"{RESULTS}/train/{{dataset}}/best.json",
        plot=report(
            f"{RESULTS}/train/{{dataset}}/grid.png",
            caption="../report/grid.rst",
            category="Training",
            subcategory="{dataset}",
            labels={"model": "all", "grid point": "all", "figure": "grid search"},
        ),
    log:
        f"{RESULTS}/logs/grid_summary/{{dataset}}.log",
    conda:
        ENV
    params:
        select_by=TRAIN["select_by"],
    script:
        "../scripts/grid_summary.py"


rule evaluate:
    input:
        grid=f"{RESULTS}/train/{{dataset}}/grid.csv",
        models=model_files,
        calibrations=calibration_files,
        test=train_file("test"),
        manifest=manifest_path("{dataset}"),
    output:
        metrics=f"{RESULTS}/evaluate/{{dataset}}/{{model}}/metrics.json",
        per_class=f"{RESULTS}/evaluate/{{dataset}}/{{model}}/per_class.csv",
        cells=f"{RESULTS}/evaluate/{{dataset}}/{{model}}/cells.csv",
        cases=f"{RESULTS}/evaluate/{{dataset}}/{{model}}/cases.csv",
        reliability=report(
            f"{RESULTS}/evaluate/{{dataset}}/{{model}}/reliability.png",
            caption="../report/reliability.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "reliability (test)"},
        ),
        review=report(
            f"{RESULTS}/evaluate/{{dataset}}/{{model}}/review.png",
            caption="../report/review.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "review trade-off"},
        ),
        confusion=report(
            f"{RESULTS}/evaluate/{{dataset}}/{{model}}/confusion.png",
            caption="../report/confusion.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "confusion matrix"},
        ),
    log:
        f"{RESULTS}/logs/evaluate/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{dataset}}/{{model}}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    params:
        select_by=TRAIN["select_by"],
        decode=config["evaluate"],
        tta=config["evaluate"]["tta"],
        seed=SEED,
        tracking=TRACKING,
    script:
        "../scripts/evaluate.py"
