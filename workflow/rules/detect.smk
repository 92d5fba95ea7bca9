# Detection: find every chromosome of each metaphase (classical segmentation) and
# compare with the VOC boxes of the dataset (docs/detection.md).


rule detect_evaluate:
    input:
        manifest=train_manifests,
    output:
        metrics="results/detect/{dataset}/metrics.json",
        per_cell="results/detect/{dataset}/per_cell.csv",
        overlay=report(
            "results/detect/{dataset}/overlay.png",
            caption="../report/detect_overlay.rst",
            category="Detection",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/detect_evaluate/{dataset}.log",
    benchmark:
        "results/benchmarks/detect_evaluate/{dataset}.tsv"
    conda:
        ENV
    threads: 1
    params:
        detect=config["detect"]["params"],
        overlay_cells=config["detect"]["overlay_cells"],
    script:
        "../scripts/detect_evaluate.py"


rule train_detector:
    input:
        manifest=train_manifests,
        weights=detector_weights,
    output:
        model="results/detect/{dataset}/learned/model.keras",
        settings="results/detect/{dataset}/learned/detector.json",
        metrics="results/detect/{dataset}/learned/train_metrics.json",
        history="results/detect/{dataset}/learned/history.json",
        curves="results/detect/{dataset}/learned/curves.png",
    log:
        "results/logs/train_detector/{dataset}.log",
    benchmark:
        "results/benchmarks/train_detector/{dataset}.tsv"
    conda:
        ENV_GPU if GPU["enabled"] else ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RESOURCES,
    params:
        job=detector_job,
    script:
        "../scripts/train.py"


rule detect_learned_evaluate:
    input:
        manifest=train_manifests,
        model="results/detect/{dataset}/learned/model.keras",
        settings="results/detect/{dataset}/learned/detector.json",
    output:
        metrics="results/detect/{dataset}/learned/metrics.json",
        per_cell="results/detect/{dataset}/learned/per_cell.csv",
        overlay=report(
            "results/detect/{dataset}/learned/overlay.png",
            caption="../report/detect_overlay.rst",
            category="Detection",
            subcategory="{dataset} (learned)",
        ),
        pr=report(
            "results/detect/{dataset}/learned/pr.png",
            caption="../report/detect_pr.rst",
            category="Detection",
            subcategory="{dataset} (learned)",
        ),
    log:
        "results/logs/detect_learned_evaluate/{dataset}.log",
    benchmark:
        "results/benchmarks/detect_learned_evaluate/{dataset}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    params:
        job=detector_evaluate_job,
    script:
        "../scripts/evaluate.py"
