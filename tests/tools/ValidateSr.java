// Runs PixelMed's DicomSRValidator (Debian's libpixelmed-java) on many files in one JVM: its
// constructor compiles the template stylesheets (tens of seconds), so `java ... DicomSRValidator
// FILE` per file would pay that each time. Prints, per file, a line "=== FILE" and the report.
// Run as a single-file source program:
//   java -Djdk.xml.xpathExprOpLimit=0 -Djdk.xml.xpathExprGrpLimit=0 -Djdk.xml.xpathTotalOpLimit=0 \
//        -cp /usr/share/java/pixelmed.jar tests/tools/ValidateSr.java FILE...
public class ValidateSr {
    public static void main(String[] files) throws Exception {
        com.pixelmed.validate.DicomSRValidator validator = new com.pixelmed.validate.DicomSRValidator();
        for (String file : files) {
            System.out.println("=== " + file);
            System.out.println(validator.validate(file));
        }
    }
}
