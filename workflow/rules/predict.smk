# Whole cells: the best classifier of each trained VOC dataset on every cell of a split
# -> karyogram, boxes, chromosome table and karyotype call per cell (karyoflow predict);
# the call end to end against each cell's truth, from the annotated boxes and from the
# image alone (docs/calls.md).


rule predict_cells:
    input:
        best="results/train/{dataset}/best.json",
        models=all_model_files,
        manifest=manifest_path("{dataset}"),
        detector=predict_detector,
    output:
        summary="results/predict/{dataset}/summary.csv",
        cells=report(
            directory("results/predict/{dataset}/cells"),
            patterns=["{cell}/karyogram.png"],
            caption="../report/karyogram.rst",
            category="Karyograms",
            subcategory="{dataset}",
            labels={"cell": "{cell}", "figure": "karyogram"},
        ),
    log:
        "results/logs/predict_cells/{dataset}.log",
    benchmark:
        "results/benchmarks/predict_cells/{dataset}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    params:
        settings=PREDICT,
        preprocess=PREPROCESS["params"],
        detect=config["detect"]["params"],
        tta=config["evaluate"]["tta"],
        call=config["evaluate"]["call"],
        cases=config["evaluate"]["cases"],
    script:
        "../scripts/predict_cells.py"


rule evaluate_calls:
    input:
        best="results/train/{dataset}/best.json",
        models=all_model_files,
        manifest=manifest_path("{dataset}"),
        detector=calls_detector,
        detector_metrics=calls_detector_metrics,
    output:
        metrics="results/calls/{dataset}/metrics.json",
        cells="results/calls/{dataset}/cells.csv",
        cases="results/calls/{dataset}/cases.csv",
        figure=report(
            "results/calls/{dataset}/calls.png",
            caption="../report/calls.rst",
            category="Karyotype calls",
            subcategory="{dataset}",
            labels={"figure": "end to end"},
        ),
    log:
        "results/logs/evaluate_calls/{dataset}.log",
    benchmark:
        "results/benchmarks/evaluate_calls/{dataset}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    params:
        splits=CALLS["splits"],
        preprocess=PREPROCESS["params"],
        detect=config["detect"]["params"],
        call=config["evaluate"]["call"],
        cases=config["evaluate"]["cases"],
        tta=config["evaluate"]["tta"],
        tracking=TRACKING,
    script:
        "../scripts/evaluate_calls.py"
