# Whole cells: the best classifier of each trained VOC dataset on every cell of a split
# -> karyogram, boxes, chromosome table and ISCN count per cell (karyoflow predict).


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
    script:
        "../scripts/predict_cells.py"
