# Whole cells: the best classifier of each trained VOC dataset on every cell of a split
# -> karyogram, boxes, chromosome table and karyotype call per cell (karyoflow predict);
# the call end to end against each cell's truth, from the annotated boxes and from the
# image alone (docs/calls.md).


rule predict_cells:
    input:
        best=f"{RESULTS}/train/{{dataset}}/best.json",
        models=all_model_files,
        manifest=manifest_path("{dataset}"),
        detector=predict_detector,
    output:
        summary=f"{RESULTS}/predict/{{dataset}}/summary.csv",
        cells=report(
            directory(f"{RESULTS}/predict/{{dataset}}/cells"),
            patterns=["{cell}/karyogram.png"],
            caption="../report/karyogram.rst",
            category="Karyograms",
            subcategory="{dataset}",
            labels={"cell": "{cell}", "figure": "karyogram"},
        ),
    log:
        f"{RESULTS}/logs/predict_cells/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict_cells/{{dataset}}.tsv"
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
        best=f"{RESULTS}/train/{{dataset}}/best.json",
        models=all_model_files,
        manifest=manifest_path("{dataset}"),
        detector=calls_detector,
        detector_metrics=calls_detector_metrics,
    output:
        metrics=f"{RESULTS}/calls/{{dataset}}/metrics.json",
        cells=f"{RESULTS}/calls/{{dataset}}/cells.csv",
        cases=f"{RESULTS}/calls/{{dataset}}/cases.csv",
        figure=report(
            f"{RESULTS}/calls/{{dataset}}/calls.png",
            caption="../report/calls.rst",
            category="Karyotype calls",
            subcategory="{dataset}",
            labels={"figure": "end to end"},
        ),
    log:
        f"{RESULTS}/logs/evaluate_calls/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_calls/{{dataset}}.tsv"
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
