# Detection: find every chromosome of each metaphase (classical segmentation) and
# compare with the VOC boxes of the dataset (docs/detection.md).


rule detect_evaluate:
    input:
        manifest=manifest_path("{dataset}"),
    output:
        metrics=f"{RESULTS}/detect/{{dataset}}/metrics.json",
        per_cell=f"{RESULTS}/detect/{{dataset}}/per_cell.csv",
        overlay=report(
            f"{RESULTS}/detect/{{dataset}}/overlay.png",
            caption="../report/detect_overlay.rst",
            category="Detection",
            subcategory="{dataset}",
        ),
    log:
        f"{RESULTS}/logs/detect_evaluate/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/detect_evaluate/{{dataset}}.tsv"
    conda:
        ENV
    threads: 1
    params:
        detect=config["detect"]["params"],
        overlay_cells=config["detect"]["overlay_cells"],
    script:
        "../scripts/detect_evaluate.py"
